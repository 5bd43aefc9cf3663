"""Inception Score over consecutive splits, as torch-fidelity computes it (no shuffle)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from inversion.errors import InversionError


def inception_score(logits: Tensor, splits: int = 10) -> tuple[Tensor, Tensor]:
    """Mean and std over ``splits`` consecutive chunks of exp(E KL(p(y|x) || p(y))).

    Chunk i holds rows ``i*N//splits`` to ``(i+1)*N//splits``; float64; the std is the
    population std (numpy's default), as in torch-fidelity.
    """
    n = logits.shape[0]
    if n < splits:
        raise InversionError(
            f"Inception Score with {splits} splits needs at least {splits} "
            f"images, got {n}; lower the number of splits."
        )
    logits = logits.double()
    p, log_p = logits.softmax(dim=1), logits.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        p_chunk, log_p_chunk = p[lo:hi], log_p[lo:hi]
        log_marginal = p_chunk.mean(dim=0, keepdim=True).log()
        scores.append((p_chunk * (log_p_chunk - log_marginal)).sum(dim=1).mean().exp())
    stacked = torch.stack(scores)
    return stacked.mean(), stacked.std(unbiased=False)


class InceptionScore(Metric):
    """Inception Score of produced images from their (Inception or classifier) logits.

    Under DDP the logits of all processes are gathered (rank by rank) before splitting,
    so the split boundaries differ from a one-process run on the same images; exact
    paper numbers are computed on one device.

    Args:
        splits: Number of consecutive splits (torch-fidelity's default is 10).
    """

    full_state_update = False
    logits: list[Tensor]  # a list state (add_state in __init__)
    higher_is_better = True

    def __init__(self, splits: int = 10, **kwargs) -> None:
        super().__init__(**kwargs)
        self.splits = splits
        self.add_state("logits", [], dist_reduce_fx="cat")

    def update(self, logits: Tensor) -> None:  # noqa: D102
        self.logits.append(logits.float())

    def compute(self) -> tuple[Tensor, Tensor]:  # noqa: D102
        mean, std = inception_score(dim_zero_cat(self.logits), self.splits)
        return mean.float(), std.float()
