"""Synthetic training images for zero-shot inverters, with real images for evaluation only.

:class:`SyntheticImagesDataModule` trains on noise (``gaussian``, ``uniform``,
``smooth``) or on a folder stamped as synthesised (written by ``SaveImages``, e.g. from
class inversion); its training loader can hold nothing else. Real images (``digits:test``
or a folder) may be named in ``evaluate_on``: they feed validation and test only.

Zero-shot modules call :func:`check_synthetic_training` on the loader they are about to
train on: only the datasets of this file (and the foundation's ``NoiseDataset``) pass,
by exact type, so a DataModule of real data (``DigitsDataModule``,
``ImageFolderDataModule``) or a wrapper around one is refused before the first step.

The training loader is indexed by step: batch s is the same whatever happened before
(noise seeded by step and rank; folder images in a per-epoch seeded order), and a
resumed run continues at its global step, so checkpoints resume exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

from inversion.data.digits import SPLITS, load_digits_split
from inversion.data.image_files import scan_image_folder
from inversion.data.noise import NOISE_KINDS, NoiseKind, noise_images
from inversion.data.synthesised import read_synthesised_folder
from inversion.errors import InversionError
from inversion.seeds import derive_seed
from model_inversion.datamodules.base import BaseDataModule
from model_inversion.datamodules.image_folder import ImageFolderDataset
from model_inversion.datamodules.noise import NoiseDataset
from model_inversion.datamodules.sampling import world_and_rank

NO_LABEL = -1
GAUSSIAN_STD = 0.25  # of the gaussian kind: 0.5 + 0.25 N(0, 1), clipped to [0, 1]


class StepSampler(DistributedSampler):
    """Steps ``start``..``length - 1`` of a step-indexed dataset, with length ``length``.

    Reporting the whole length keeps Lightning's batch count right when a run resumes
    mid-epoch (it restores how many batches were done); being a ``DistributedSampler``
    keeps Lightning from replacing it (the batches are already per rank).
    """

    def __init__(self, dataset: Dataset, start: int) -> None:
        super().__init__(dataset, num_replicas=1, rank=0, shuffle=False)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, len(cast(Sized, self.dataset))))

    def __len__(self) -> int:
        return len(cast(Sized, self.dataset))  # step-indexed datasets have a length


class NoiseBatches(Dataset):
    """Item s is the noise batch of training step s (seeded by seed, rank and step)."""

    def __init__(
        self,
        kind: NoiseKind,
        shape: tuple[int, int, int],
        batch_size: int,
        length: int,
        seed: int,
    ) -> None:
        self.kind, self.shape, self.batch_size = kind, shape, batch_size
        self.length, self.seed = length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: int) -> tuple[Tensor, Tensor]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, item))
        channels, size, _ = self.shape
        images = noise_images(self.kind, self.batch_size, channels, size, generator, GAUSSIAN_STD)
        return images, torch.full((self.batch_size,), NO_LABEL)


class FolderBatches(Dataset):
    """Item s is the batch of training step s, drawn from stamped synthesised images.

    Every epoch over the images is a fresh permutation seeded by (seed, epoch).
    """

    def __init__(self, images: ImageFolderDataset, batch_size: int, length: int, seed: int) -> None:
        if len(images) < batch_size:
            raise InversionError(
                f"The synthesised folder holds {len(images)} training images, fewer than one "
                f"batch of {batch_size}; synthesise more or lower batch_size."
            )
        self.images, self.batch_size = images, batch_size
        self.length, self.seed = length, seed
        self.per_epoch = len(images) // batch_size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: int) -> tuple[Tensor, Tensor]:
        epoch, index = divmod(item, self.per_epoch)
        generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
        order = torch.randperm(len(self.images), generator=generator)
        picked = order[index * self.batch_size : (index + 1) * self.batch_size].tolist()
        images, labels = zip(*(self.images[i] for i in picked), strict=True)
        return torch.stack(images), torch.as_tensor(labels)


SYNTHETIC_TRAINING_DATASETS = (NoiseBatches, FolderBatches, NoiseDataset)


def check_synthetic_training(loader: Any, module: str) -> None:
    """Refuse to train on anything but synthetic images (exact dataset types).

    Args:
        loader: The training DataLoader (or what Lightning holds as one).
        module: The module's name, for the message.

    Raises:
        InversionError: If the loader's dataset is not one of
            :data:`SYNTHETIC_TRAINING_DATASETS`.
    """
    dataset = getattr(loader, "dataset", None)
    if type(dataset) not in SYNTHETIC_TRAINING_DATASETS:
        raise InversionError(
            f"{module} is zero-shot: it trains only on synthetic images, never on real data "
            f"of the task. Its training data is a {type(dataset).__name__}; use "
            "SyntheticImagesDataModule (source: gaussian, uniform, smooth, or a folder "
            "written by SaveImages) and name real images in its evaluate_on for "
            "validation and test."
        )


def _evaluation_dataset(source: str, image_size: int, channels: int) -> Dataset:
    kind, _, split = source.partition(":")
    if kind == "digits":
        if split not in SPLITS:
            raise InversionError(f"Unknown digits split in {source!r}; choose one of {SPLITS}.")
        return TensorDataset(*load_digits_split(split, image_size, channels))
    files, labels, _ = scan_image_folder(source)
    return ImageFolderDataset(files, labels, image_size, channels, train=False)


class SyntheticImagesDataModule(BaseDataModule):
    """Synthetic training images (noise or a stamped folder); real ones for evaluation only.

    The training loader yields one batch per training step, ``steps`` in all (a module
    with a schedule sets :attr:`steps` itself); a resumed run continues at its global
    step. Items are ``(images, labels)``; noise has labels -1.

    Args:
        source: ``gaussian``, ``uniform``, ``smooth`` (noise), or the path of a folder
            written by the ``SaveImages`` callback (stamped as synthesised).
        image_size: Side of the images.
        channels: Channels of the images.
        batch_size: Images per batch.
        steps: Training batches, when no module sets them.
        evaluate_on: Real images for validation and test: ``digits:val``,
            ``digits:test`` or an image folder (class or flat layout). None evaluates on
            held-out synthetic images.
        num_val_images: Held-out synthetic images (noise of another seed, or images of
            the folder kept out of training) when ``evaluate_on`` is None.
        seed: Base seed of the noise and of the folder's order.
        verify: Check the SHA-256 of every folder image against its stamp.
        num_workers: DataLoader workers.
    """

    def __init__(
        self,
        source: str = "smooth",
        image_size: int = 32,
        channels: int = 1,
        batch_size: int = 64,
        steps: int = 1000,
        evaluate_on: str | None = None,
        num_val_images: int = 256,
        seed: int = 0,
        verify: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise InversionError(f"channels must be 1 or 3, got {channels}.")
        if batch_size < 1 or num_val_images < 1:
            raise InversionError("batch_size and num_val_images must be at least 1.")
        # a module with a schedule overrides steps: not a hyperparameter of the data
        self.save_hyperparameters(ignore=["steps"])
        self.steps = steps
        self.is_noise = source in NOISE_KINDS
        self._folder: tuple[list[Path], list[int]] | None = None
        if not self.is_noise:
            self._folder = read_synthesised_folder(source, verify=verify)
            if not evaluate_on and len(self._folder[0]) <= num_val_images:
                raise InversionError(
                    f"{source} holds {len(self._folder[0])} images; keeping "
                    f"num_val_images={num_val_images} out of training leaves none. Lower "
                    "num_val_images or give evaluate_on."
                )

    def set_schedule(self, steps: int) -> None:
        """Make one training epoch a schedule of ``steps`` steps (a module with one calls it)."""
        self.steps = steps

    def _folder_images(self, training: bool) -> ImageFolderDataset:
        if self._folder is None:
            raise InversionError(f"{self.hparams.source} is noise, not a folder of images.")
        files, labels = self._folder
        held_out = 0 if self.hparams.evaluate_on else self.hparams.num_val_images
        cut = len(files) - held_out
        part = slice(0, cut) if training else slice(cut, None)
        return ImageFolderDataset(
            files[part], labels[part], self.hparams.image_size, self.hparams.channels, train=False
        )

    def train_dataloader(self) -> DataLoader:
        """One batch per remaining training step (sharded by rank through the seed)."""
        hp = self.hparams
        world, rank = world_and_rank()
        seed = derive_seed(hp.seed, rank)
        if self.is_noise:
            shape = (hp.channels, hp.image_size, hp.image_size)
            dataset: Dataset = NoiseBatches(hp.source, shape, hp.batch_size, self.steps, seed)
        else:
            dataset = FolderBatches(self._folder_images(True), hp.batch_size, self.steps, seed)
        start = self.trainer.global_step if self.trainer is not None else 0
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=StepSampler(dataset, start),
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
        )

    def _evaluation_loader(self, seed_offset: int) -> DataLoader:
        hp = self.hparams
        if hp.evaluate_on:
            dataset = _evaluation_dataset(hp.evaluate_on, hp.image_size, hp.channels)
        elif self.is_noise:
            dataset = NoiseDataset(
                hp.source,
                hp.num_val_images,
                hp.channels,
                hp.image_size,
                hp.seed + seed_offset,
                GAUSSIAN_STD,
            )
        else:
            dataset = self._folder_images(False)
        return DataLoader(dataset, batch_size=hp.batch_size, num_workers=hp.num_workers)

    def val_dataloader(self) -> DataLoader:
        """``evaluate_on`` (real, never trained on) or held-out synthetic images."""
        return self._evaluation_loader(1)

    def test_dataloader(self) -> DataLoader:
        """``evaluate_on``, or held-out synthetic images (noise of yet another seed)."""
        return self._evaluation_loader(2)
