"""Noise images as a DataModule: label-free proxy, synthetic training or test data."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from inversion.data.noise import NOISE_KINDS, NoiseKind, noise_images
from inversion.errors import InversionError
from inversion.seeds import derive_seed
from model_inversion.datamodules.base import BaseDataModule

NO_LABEL = -1


class NoiseDataset(Dataset):
    """``length`` noise images; item i is the same every time (seeded by ``seed`` and i).

    Items are ``(image, -1)``: noise has no label.
    """

    def __init__(
        self, kind: NoiseKind, length: int, channels: int, image_size: int, seed: int, std: float
    ) -> None:
        if kind not in NOISE_KINDS:
            raise InversionError(f"Unknown noise kind {kind!r}; choose one of {NOISE_KINDS}.")
        self.kind, self.length, self.channels = kind, length, channels
        self.image_size, self.seed, self.std = image_size, seed, std

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, index))
        image = noise_images(self.kind, 1, self.channels, self.image_size, generator, self.std)
        return image[0], torch.tensor(NO_LABEL)


class NoiseDataModule(BaseDataModule):
    """Gaussian, uniform or smooth low-frequency noise images in [0, 1].

    The training split is ``num_samples`` images; validation and test are
    ``num_val_samples`` others (different seeds). Labels are -1.

    Args:
        kind: ``gaussian``, ``uniform`` or ``smooth``.
        num_samples: Training images per epoch.
        num_val_samples: Validation and test images.
        image_size: Side length.
        channels: Channels per image.
        std: Standard deviation of the Gaussian kind.
        batch_size: Batch size of every loader.
        seed: Base seed; item i of a split is reproducible.
        num_workers: DataLoader workers.
    """

    def __init__(
        self,
        kind: NoiseKind = "gaussian",
        num_samples: int = 1024,
        num_val_samples: int = 256,
        image_size: int = 32,
        channels: int = 1,
        std: float = 0.25,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if kind not in NOISE_KINDS:
            raise InversionError(f"Unknown noise kind {kind!r}; choose one of {NOISE_KINDS}.")
        if num_samples < 1 or num_val_samples < 1:
            raise InversionError("num_samples and num_val_samples must be at least 1.")
        self.save_hyperparameters()

    def _loader(self, length: int, seed_offset: int, shuffle: bool = False) -> DataLoader:
        hp = self.hparams
        dataset = NoiseDataset(
            hp.kind, length, hp.channels, hp.image_size, hp.seed + seed_offset, hp.std
        )
        return DataLoader(
            dataset,
            batch_size=hp.batch_size,
            shuffle=shuffle,
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader(self.hparams.num_samples, 0, shuffle=True)

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader(self.hparams.num_val_samples, 1)

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader(self.hparams.num_val_samples, 2)

    def predict_dataloader(self) -> DataLoader:  # noqa: D102
        return self.test_dataloader()
