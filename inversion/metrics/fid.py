"""Fréchet distance between feature distributions (FID), DDP-correct via torchmetrics."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from inversion.errors import InversionError


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> Tensor:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), in float64.

    The trace of the matrix square root is the sum of the square roots of the
    eigenvalues of S1 S2 (as torch-fidelity computes it).
    """
    mu1, sigma1, mu2, sigma2 = (t.double() for t in (mu1, sigma1, mu2, sigma2))
    diff = mu1 - mu2
    eigenvalues = torch.linalg.eigvals(sigma1 @ sigma2)
    tr_covmean = eigenvalues.sqrt().real.sum()
    return diff.dot(diff) + sigma1.trace() + sigma2.trace() - 2 * tr_covmean


class FrechetDistance(Metric):
    """FID between features of produced images and of reference images.

    Keeps running sums (float64) of features and their outer products, so states are
    summed across DDP processes and memory does not grow with the number of images.
    Reference statistics can be given precomputed (:meth:`set_reference`), e.g. from a
    cache, so real images are embedded once.

    Args:
        num_features: Feature dimension.
    """

    full_state_update = False
    # states (add_state in __init__)
    fake_sum: Tensor
    fake_outer: Tensor
    fake_n: Tensor
    real_sum: Tensor
    real_outer: Tensor
    real_n: Tensor
    higher_is_better = False

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(**kwargs)
        for side in ("fake", "real"):
            self.add_state(
                f"{side}_sum", torch.zeros(num_features, dtype=torch.float64), dist_reduce_fx="sum"
            )
            self.add_state(
                f"{side}_outer",
                torch.zeros(num_features, num_features, dtype=torch.float64),
                dist_reduce_fx="sum",
            )
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.reference: tuple[Tensor, Tensor] | None = None

    def update(self, features: Tensor, real: bool = False) -> None:
        """Add a batch of features (N x D) of produced (or, with ``real``, reference) images."""
        side = "real" if real else "fake"
        features = features.double()
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + features.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + features.T @ features)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + features.shape[0])

    def set_reference(self, mean: Tensor, cov: Tensor) -> None:
        """Use precomputed reference statistics instead of ``update(..., real=True)``."""
        self.reference = (mean.double(), cov.double())

    def statistics(self, real: bool = False) -> tuple[Tensor, Tensor]:
        """Mean and unbiased covariance of the (synced) features of one side."""
        side = "real" if real else "fake"
        n = getattr(self, f"{side}_n")
        if int(n) < 2:
            raise InversionError(
                f"FID needs at least 2 {'reference' if real else 'produced'} images, got {int(n)}."
            )
        total, outer = getattr(self, f"{side}_sum"), getattr(self, f"{side}_outer")
        mean = total / n
        cov = (outer - n * torch.outer(mean, mean)) / (n - 1)
        return mean, cov

    def compute(self) -> Tensor:  # noqa: D102
        fake_mean, fake_cov = self.statistics(real=False)
        real_mean, real_cov = self.reference or self.statistics(real=True)
        real_mean, real_cov = real_mean.to(fake_mean.device), real_cov.to(fake_mean.device)
        return frechet_distance(fake_mean, fake_cov, real_mean, real_cov).float()
