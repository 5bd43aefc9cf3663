"""Class targets for per-sample inversion (class inversion's DataModule)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized
from typing import cast

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from inversion.errors import InversionError
from model_inversion.datamodules.base import BaseDataModule
from model_inversion.datamodules.sampling import ShardedSampler, world_and_rank


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
    for the batch ``i // repeat``: item i is step i of the whole schedule, resumed or not.
    """

    def __init__(self, batches: list[list[int]], labels: Tensor, repeat: int = 1) -> None:
        self.batches, self.labels, self.repeat = batches, labels, repeat

    def __len__(self) -> int:
        return len(self.batches) * self.repeat

    def __getitem__(self, item: int) -> dict:
        index = torch.tensor(self.batches[item // self.repeat], dtype=torch.long)
        return {"index": index, "label": self.labels[index], "step": item % self.repeat}


class ResumingSampler(ShardedSampler):
    """All of a one-replica dataset's items in order, from ``start`` on (resuming).

    Its length stays the whole dataset's, as Lightning counts the epoch: a resumed fit
    restores its batch progress (``start`` batches done, numbered from ``start``) and
    ends the epoch at this length or when the items run out, so a resume yields exactly
    the steps the uninterrupted run had left, with the same batch indices.
    """

    def __init__(self, dataset: Sized, start: int = 0) -> None:
        super().__init__(dataset, num_replicas=1, rank=0)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, len(cast(Sized, self.dataset))))


class ClassTargetsDataModule(BaseDataModule):
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
        if num_classes < 1:
            raise InversionError(
                f"data num_classes must be at least 1 (the target classifier's classes), got "
                f"{num_classes}."
            )
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
        if images_per_class < 1:
            raise InversionError(f"images_per_class must be at least 1, got {images_per_class}.")
        self.save_hyperparameters()  # checks batch_size
        self.classes = chosen
        self.labels = torch.tensor(chosen).repeat_interleave(images_per_class)
        self.repeat = 1

    @property
    def num_classes(self) -> int:
        """Classes of the target classifier, as given (the module checks it fits the target)."""
        return int(self.hparams.num_classes)

    @property
    def num_targets(self) -> int:
        """Total number of targets over all ranks."""
        return len(self.labels)

    def set_schedule(self, steps: int) -> None:
        """Repeat each batch of targets ``steps`` times: its inversion's schedule."""
        self.repeat = steps

    def _batches(self) -> list[list[int]]:
        world, rank = world_and_rank()
        return rank_batches(self.num_targets, self.hparams.batch_size, world, rank)

    def _loader(self, repeat: int = 1, start: int = 0) -> DataLoader:
        dataset = TargetBatches(self._batches(), self.labels, repeat)
        # already sharded: a one-replica ShardedSampler keeps Lightning's sampler away
        return DataLoader(dataset, batch_size=None, sampler=ResumingSampler(dataset, start))

    def train_dataloader(self) -> DataLoader:
        """Each batch ``repeat`` times; a resumed fit skips the steps already done.

        ``trainer.global_step`` counts every training step (one per item, empty batches
        included), so it is the number of items the checkpointed run consumed.
        """
        start = self.trainer.global_step if self.trainer is not None else 0
        return self._loader(self.repeat, start)

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader()

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader()

    def predict_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader()
