"""Synthetic DataModules: noise images, and class targets for per-sample inversion."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from datamodules.sampling import ShardedSampler, world_and_rank
from inversion.data.noise import NOISE_KINDS, noise_images
from inversion.errors import InversionError

NO_LABEL = -1


class NoiseDataset(Dataset):
    """``length`` noise images; item i is the same every time (seeded by ``seed`` and i).

    Items are ``(image, -1)``: noise has no label.
    """

    def __init__(
        self, kind: str, length: int, channels: int, image_size: int, seed: int, std: float
    ) -> None:
        if kind not in NOISE_KINDS:
            raise InversionError(f"Unknown noise kind {kind!r}; choose one of {NOISE_KINDS}.")
        self.kind, self.length, self.channels = kind, length, channels
        self.image_size, self.seed, self.std = image_size, seed, std

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        image = noise_images(self.kind, 1, self.channels, self.image_size, generator, self.std)
        return image[0], torch.tensor(NO_LABEL)


class NoiseDataModule(pl.LightningDataModule):
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
        kind: str = "gaussian",
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


def rank_batches(num_targets: int, batch_size: int, world: int, rank: int) -> list[list[int]]:
    """This rank's targets (rank, rank + W, ...) in batches; every rank gets as many batches.

    Equal batch counts keep the ranks in step under DDP without padding duplicates; a
    rank with fewer targets gets slightly smaller (possibly empty) batches.
    """
    local = list(range(rank, num_targets, world))
    count = max(math.ceil(math.ceil(num_targets / world) / batch_size), 1)
    bounds = [round(i * len(local) / count) for i in range(count + 1)]
    return [local[bounds[i] : bounds[i + 1]] for i in range(count)]


class TargetBatches(Dataset):
    """Pre-built batches of targets, each repeated ``repeat`` times in a row.

    Item i is ``{"index": target indices, "label": their classes, "step": i % repeat}``
    for the batch ``i // repeat``; items before ``start`` are skipped (resuming).
    """

    def __init__(
        self, batches: list[list[int]], labels: Tensor, repeat: int = 1, start: int = 0
    ) -> None:
        self.batches, self.labels, self.repeat, self.start = batches, labels, repeat, start

    def __len__(self) -> int:
        return max(len(self.batches) * self.repeat - self.start, 0)

    def __getitem__(self, item: int) -> dict:
        position = item + self.start
        index = torch.tensor(self.batches[position // self.repeat], dtype=torch.long)
        return {"index": index, "label": self.labels[index], "step": position % self.repeat}


class ClassTargetsDataModule(pl.LightningDataModule):
    """Which classes to invert, and how many images of each.

    Targets are dealt round-robin over DDP ranks (each target is produced by exactly one
    rank) and batched so that every rank has the same number of batches. A per-sample
    method sets :attr:`repeat` (its optimisation steps per batch): the training loader
    then yields each batch ``repeat`` times in a row, with its ``step``, and skips the
    steps a resumed run has already done. Validation, test and predict walk the batches
    once.

    Args:
        num_classes: Classes of the target classifier.
        classes: Which classes (default: all of ``range(num_classes)``).
        images_per_class: Images (targets) per class.
        batch_size: Largest number of targets per batch.
    """

    def __init__(
        self,
        num_classes: int = 10,
        classes: list[int] | None = None,
        images_per_class: int = 1,
        batch_size: int = 16,
    ) -> None:
        super().__init__()
        chosen = list(range(num_classes)) if classes is None else list(classes)
        if not chosen:
            raise InversionError(
                "classes is empty; name at least one class (or leave it unset for all classes)."
            )
        bad = [c for c in chosen if not 0 <= c < num_classes]
        if bad:
            raise InversionError(
                f"classes {bad} are outside 0..{num_classes - 1} (num_classes={num_classes})."
            )
        if len(set(chosen)) != len(chosen):
            raise InversionError(
                f"classes lists a class twice: {chosen}; use images_per_class for several "
                "images of one class."
            )
        if images_per_class < 1 or batch_size < 1:
            raise InversionError("images_per_class and batch_size must be at least 1.")
        self.save_hyperparameters()
        self.classes = chosen
        self.labels = torch.tensor(chosen).repeat_interleave(images_per_class)
        self.repeat = 1

    @property
    def num_targets(self) -> int:
        """Total number of targets over all ranks."""
        return len(self.labels)

    def _batches(self) -> list[list[int]]:
        world, rank = world_and_rank()
        return rank_batches(self.num_targets, self.hparams.batch_size, world, rank)

    def _loader(self, repeat: int = 1, start: int = 0) -> DataLoader:
        dataset = TargetBatches(self._batches(), self.labels, repeat, start)
        # already sharded: a one-replica ShardedSampler keeps Lightning's sampler away
        return DataLoader(
            dataset, batch_size=None, sampler=ShardedSampler(dataset, num_replicas=1, rank=0)
        )

    def train_dataloader(self) -> DataLoader:  # noqa: D102
        start = self.trainer.global_step if self.trainer is not None else 0
        return self._loader(self.repeat, start)

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader()

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader()

    def predict_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader()
