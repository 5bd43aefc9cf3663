"""Samplers: every item to exactly one rank (no padding); a shuffle that resumes mid-epoch."""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any, cast

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from inversion.distributed import world_and_rank

__all__ = ["ShardedSampler", "world_and_rank"]


class ShardedSampler(DistributedSampler):
    """Deal items round-robin over ranks: rank r gets items r, r + W, r + 2W, ...

    Unlike ``DistributedSampler`` it never pads with duplicates, so shards may differ in
    length by one. Lightning leaves a ``DistributedSampler`` subclass in place, so using
    it in a DataModule keeps per-sample work (one image per class target) unduplicated
    under DDP.

    Args:
        dataset: The dataset to shard.
        num_replicas: World size; default from ``torch.distributed`` (1 if not running).
        rank: This process's rank; default from ``torch.distributed`` (0 if not running).
    """

    def __init__(
        self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None
    ) -> None:
        world, current = world_and_rank()
        num_replicas = world if num_replicas is None else num_replicas
        rank = current if rank is None else rank
        # torch types the dataset as a Dataset; a sampler only needs its length
        super().__init__(
            cast(Dataset, dataset), num_replicas=num_replicas, rank=rank, shuffle=False
        )

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(cast(Sized, self.dataset)), self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, len(cast(Sized, self.dataset)), self.num_replicas))


class EpochSampler(ShardedSampler):
    """A one-process sampler whose epoch can be continued after a restart.

    Subclasses give the epoch's items in :meth:`order`; ``__iter__`` runs lazily, at the
    first batch, so a position handed over after the loader's iterator was made (as
    Lightning does when it resumes) still applies. A ``DistributedSampler`` (one replica),
    so Lightning leaves it in place and calls ``set_epoch`` before every epoch.
    See :class:`ResumableLoader`.

    Args:
        dataset: The dataset (already this process's share).
    """

    def __init__(self, dataset: Sized) -> None:
        super().__init__(dataset, num_replicas=1, rank=0)
        self.skipped = 0  # items skipped at the start of the current epoch (resumed)
        self._resume: tuple[dict[str, int], int] | None = None

    def position(self) -> dict[str, int]:
        """What fixes the current epoch's order (its number, and e.g. its seed)."""
        return {"epoch": self.epoch}

    def resume(self, position: dict[str, int], skip: int) -> None:
        """Continue the epoch of ``position`` after ``skip`` items, if it is the next one run."""
        self._resume = (dict(position), skip)

    def order(self, position: dict[str, int] | None) -> list[int]:
        """The items of the current epoch (of ``position``'s order when resuming)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        resume, self._resume = self._resume, None
        if resume is not None and resume[0]["epoch"] == self.epoch:
            position, self.skipped = resume
            yield from self.order(position)[self.skipped :]
        else:
            self.skipped = 0
            yield from self.order(None)


class ResumableShuffle(EpochSampler):
    """``RandomSampler``'s order, able to continue an epoch after a restart.

    Each epoch draws its seed from the global RNG at the epoch's first batch, as
    ``RandomSampler`` does; a resumed epoch replays its saved seed without drawing, so
    the global RNG continues as the checkpoint had it.

    Args:
        dataset: The dataset to shuffle.
    """

    def __init__(self, dataset: Sized) -> None:
        super().__init__(dataset)
        self.seed = 0  # the seed of the current epoch's order

    def position(self) -> dict[str, int]:  # noqa: D102
        return {"epoch": self.epoch, "seed": self.seed}

    def order(self, position: dict[str, int] | None) -> list[int]:  # noqa: D102
        if position is None:
            self.seed = int(torch.empty((), dtype=torch.int64).random_().item())
        else:
            self.seed = position["seed"]
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        return torch.randperm(len(cast(Sized, self.dataset)), generator=generator).tolist()


class ResumableLoader(DataLoader):
    """A training loader whose position in its epoch goes into checkpoints.

    Lightning saves :meth:`state_dict` of training loaders that have one and hands it
    back (:meth:`load_state_dict`) when a run resumes; the resumed epoch then yields the
    batches the interrupted one had left, in the same order. The loader's own seed comes
    from a private generator, so iterating it leaves the global RNG (dropout,
    augmentations) alone.

    Args:
        dataset: The dataset.
        sampler: An :class:`EpochSampler` over it.
        batch_size: Items per batch (None: each item is a batch).
        num_workers: DataLoader workers.
    """

    def __init__(
        self,
        dataset: Dataset,
        sampler: EpochSampler,
        batch_size: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            generator=torch.Generator(),
        )
        self.delivered = 0

    # torch types __iter__ as returning its own iterator class; Lightning only iterates it
    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        self.delivered = 0
        return self._count(super().__iter__())

    def _count(self, batches: Iterator[Any]) -> Iterator[Any]:
        sampler = cast(EpochSampler, self.sampler)
        for index, batch in enumerate(batches):
            if index == 0:  # the sampler has started: it knows what a resume skipped
                self.delivered = sampler.skipped // (self.batch_size or 1)
            self.delivered += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """The current epoch's position: its order and the batches delivered in it."""
        return {**cast(EpochSampler, self.sampler).position(), "delivered": self.delivered}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue that epoch after its delivered batches, if it is the next one run."""
        skip = state["delivered"] * (self.batch_size or 1)
        cast(EpochSampler, self.sampler).resume(state, skip)
