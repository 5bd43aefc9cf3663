"""Samples in a fixed order for the metrics that depend on it (IS splits, KID subsets).

The Inception Score splits the samples into chunks and KID draws random subsets, so both
depend on which sample is where. :class:`IndexedSamples` keeps each row with the global
index of its sample and, after the DDP sync, puts the rows back in index order, so a
number does not depend on how the samples were sharded over processes. The shuffle and
the subsets are then drawn as torch-fidelity draws them (numpy's legacy ``RandomState``
seeded with 2020, its default), so the numbers equal torch-fidelity's on the same
samples in the same order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from inversion.distributed import world_and_rank

SAMPLES_SEED = 2020  # torch-fidelity's default rng_seed


def sample_rng(seed: int = SAMPLES_SEED) -> np.random.RandomState:
    """The random stream torch-fidelity draws its shuffle and KID subsets from.

    Only indices are drawn with it (the maths stays in torch); numpy's legacy generator is
    what makes the draws, and so the numbers, equal to torch-fidelity's.
    """
    return np.random.RandomState(seed)


def shuffle_order(n: int, seed: int = SAMPLES_SEED) -> Tensor:
    """torch-fidelity's shuffle of ``n`` samples: ``RandomState(seed).permutation(n)``."""
    return torch.from_numpy(sample_rng(seed).permutation(n))


class IndexedSamples(Metric):
    """Base class: per-sample rows with a global sample index, read back in index order.

    Each ``side`` (e.g. ``fake``, ``real``) is a list state of rows (concatenated across
    processes) and one of their indices. An update without indices numbers its rows
    round-robin over processes: the j-th row this process sees gets ``j * W + rank`` (W
    the world size), which is the row's position in the whole set for the samplers that
    deal items round-robin (Lightning's ``DistributedSampler`` for evaluation, the
    project's ``ShardedSampler``), and simply the order of arrival on one process.
    """

    full_state_update = False

    def __init__(self, sides: tuple[str, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        self.sides = sides
        self.seen = dict.fromkeys(sides, 0)  # rows seen by this process, per side
        for side in sides:
            self.add_state(f"{side}_rows", [], dist_reduce_fx="cat")
            self.add_state(f"{side}_index", [], dist_reduce_fx="cat")

    def _add_rows(self, side: str, rows: Tensor, index: Tensor | None) -> None:
        n = rows.shape[0]
        if index is None:
            world, rank = world_and_rank()
            start = self.seen[side]
            index = torch.arange(start, start + n, device=rows.device) * world + rank
        elif index.shape != (n,):
            raise ValueError(f"index has shape {tuple(index.shape)}, expected ({n},).")
        self.seen[side] += n
        getattr(self, f"{side}_rows").append(rows)
        getattr(self, f"{side}_index").append(index.to(rows.device, torch.long))

    def _count(self, side: str) -> int:
        return sum(len(rows) for rows in getattr(self, f"{side}_rows"))

    def _ordered(self, side: str) -> Tensor:
        """The (synced) rows of one side, sorted by sample index (stable for ties)."""
        rows = getattr(self, f"{side}_rows")
        if isinstance(rows, list) and not rows:
            return torch.empty(0, 0, device=self.device)
        rows, index = dim_zero_cat(rows), dim_zero_cat(getattr(self, f"{side}_index"))
        return rows[torch.sort(index, stable=True).indices]

    def reset(self) -> None:
        """Forget the rows and restart the round-robin numbering."""
        super().reset()
        self.seen = dict.fromkeys(self.sides, 0)
