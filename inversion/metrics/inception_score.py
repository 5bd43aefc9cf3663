"""Inception Score over shuffled splits, as torch-fidelity computes it by default."""

from __future__ import annotations

import torch
from torch import Tensor

from inversion.errors import InversionError
from inversion.metrics.samples import SAMPLES_SEED, IndexedSamples, shuffle_order


def inception_score(
    logits: Tensor, splits: int = 10, shuffle: bool = True, seed: int = SAMPLES_SEED
) -> tuple[Tensor, Tensor]:
    """Mean and std over ``splits`` chunks of exp(E KL(p(y|x) || p(y))).

    The rows are first shuffled with torch-fidelity's permutation (``seed`` 2020, its
    default), so the splits do not follow the order in which images were produced (class
    by class, say); chunk i then holds rows ``i*N//splits`` to ``(i+1)*N//splits``.
    Float64; the std is the population std (numpy's default), as in torch-fidelity.

    Args:
        logits: N x C logits, in sample order.
        splits: Number of splits (torch-fidelity's default is 10).
        shuffle: Shuffle before splitting (torch-fidelity's default); False gives the
            consecutive, order-dependent splits.
        seed: Seed of the shuffle.
    """
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise InversionError(
            f"Inception Score with {splits} splits needs at least {max(splits, 1)} "
            f"images, got {n}; lower the number of splits (at least 1)."
        )
    if shuffle:
        logits = logits[shuffle_order(n, seed).to(logits.device)]
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


class InceptionScore(IndexedSamples):
    """Inception Score of produced images from their (Inception or classifier) logits.

    Logits are kept with the global index of their image (see
    :class:`~inversion.metrics.samples.IndexedSamples`) and put back in that order after
    the DDP gather, then shuffled as torch-fidelity does: the score is the same on one or
    several processes and does not depend on the order in which images arrive.

    Args:
        splits: Number of splits (torch-fidelity's default is 10).
        shuffle: Shuffle before splitting (torch-fidelity's default).
        seed: Seed of the shuffle (torch-fidelity's default is 2020).
    """

    higher_is_better = True

    def __init__(
        self, splits: int = 10, shuffle: bool = True, seed: int = SAMPLES_SEED, **kwargs
    ) -> None:
        super().__init__(("fake",), **kwargs)
        self.splits, self.shuffle, self.seed = splits, shuffle, seed

    def update(self, logits: Tensor, index: Tensor | None = None) -> None:
        """Add a batch of logits (N x C); ``index``: their global sample indices, if known."""
        self._add_rows("fake", logits.float(), index)

    def compute(self) -> tuple[Tensor, Tensor]:  # noqa: D102
        logits = self._ordered("fake")
        mean, std = inception_score(logits, self.splits, self.shuffle, self.seed)
        return mean.float(), std.float()
