"""A distributed sampler that gives every item to exactly one rank (no padding)."""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import cast

from torch.utils.data import Dataset, DistributedSampler

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
