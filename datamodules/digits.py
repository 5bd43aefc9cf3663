"""The embedded benchmark data as a LightningDataModule."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader, TensorDataset

from inversion.data.digits import NUM_CLASSES, load_digits_split, random_translate


class DigitsDataModule(pl.LightningDataModule):
    """scikit-learn's 8x8 digits, resized, with a fixed seeded train/val/test split.

    1,257 / 180 / 360 images; labels 0..9; images in [0, 1] (the models normalise).
    Nothing is downloaded: the data ships inside scikit-learn.

    Args:
        image_size: Side length of the resized images.
        channels: 1 (grayscale) or 3 (replicated gray).
        batch_size: Batch size of every loader.
        max_shift: Random translation (pixels, each direction) of training batches;
            0 turns augmentation off.
        num_workers: DataLoader workers (the data is tiny and in memory).
    """

    num_classes = NUM_CLASSES

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        batch_size: int = 64,
        max_shift: int = 2,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        load_digits_split("val", image_size, channels)  # validates the arguments early
        self.datasets: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:  # noqa: D102
        hp = self.hparams
        for split in ("train", "val", "test"):
            if split not in self.datasets:
                images, labels = load_digits_split(split, hp.image_size, hp.channels)
                self.datasets[split] = TensorDataset(images, labels)

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        self.setup()
        return DataLoader(
            self.datasets[split],
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader("test")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Randomly translate training batches on the device (vectorised)."""
        trainer = self.trainer
        if trainer is not None and trainer.training and self.hparams.max_shift > 0:
            images, labels = batch
            batch = [random_translate(images, self.hparams.max_shift), labels]
        return batch
