"""Kernel Inception Distance (KID) as torch-fidelity defines it, DDP-correct via torchmetrics."""

from __future__ import annotations

import torch
from torch import Tensor

from inversion.errors import InversionError
from inversion.metrics.samples import SAMPLES_SEED, IndexedSamples, sample_rng


def polynomial_kernel(x: Tensor, y: Tensor, degree: int = 3, coef0: float = 1.0) -> Tensor:
    """``(x y^T / D + coef0) ** degree`` (D the feature dimension), as in KID."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(k_xx: Tensor, k_xy: Tensor, k_yy: Tensor) -> Tensor:
    """The unbiased estimate of MMD^2 from the three m x m kernel matrices."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum()) + (k_yy.sum() - k_yy.diagonal().sum())
    return within / (m * (m - 1)) - 2 * k_xy.sum() / (m * m)


def kernel_distance(
    fake: Tensor,
    real: Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    coef0: float = 1.0,
    seed: int = SAMPLES_SEED,
) -> tuple[Tensor, Tensor]:
    """KID: mean and std of the unbiased MMD^2 over random subsets of both feature sets.

    The definition and defaults of torch-fidelity (100 subsets of 1000 samples, drawn
    without replacement with its random stream, seed 2020; polynomial kernel of degree 3
    with gamma 1/D and coef0 1; population std), except that the subset size is clamped
    to the smaller number of samples, so that small sample counts work (torch-fidelity
    refuses them; with the same clamped size the numbers agree). Float64.

    Args:
        fake: N1 x D features of produced images, in sample order.
        real: N2 x D features of reference images, in sample order.
        subsets: Number of subsets.
        subset_size: Samples per subset (at most min(N1, N2) are used).
        degree: Degree of the polynomial kernel.
        coef0: Constant of the polynomial kernel.
        seed: Seed of the subset draws.
    """
    n_fake, n_real = fake.shape[0], real.shape[0]
    size = min(subset_size, n_fake, n_real)
    if size < 2 or subsets < 1:
        raise InversionError(
            f"KID needs at least 2 produced and 2 reference images and at least 1 subset; "
            f"got {n_fake} produced, {n_real} reference, {subsets} subsets."
        )
    if fake.shape[1] != real.shape[1]:
        raise InversionError(
            f"KID features differ in size: produced {fake.shape[1]}, reference {real.shape[1]}."
        )
    fake, real = fake.double(), real.double()
    rng = sample_rng(seed)
    mmds = []
    for _ in range(subsets):
        x = fake[torch.from_numpy(rng.choice(n_fake, size, replace=False)).to(fake.device)]
        y = real[torch.from_numpy(rng.choice(n_real, size, replace=False)).to(real.device)]
        k_xx = polynomial_kernel(x, x, degree, coef0)
        k_yy = polynomial_kernel(y, y, degree, coef0)
        k_xy = polynomial_kernel(x, y, degree, coef0)
        mmds.append(mmd2_unbiased(k_xx, k_xy, k_yy))
    stacked = torch.stack(mmds)
    return stacked.mean(), stacked.std(unbiased=False)


class KernelDistance(IndexedSamples):
    """KID between features of produced images and of reference images.

    Keeps the features themselves (KID draws subsets of samples), each with the global
    index of its image, so the number is the same on one or several processes (see
    :class:`~inversion.metrics.samples.IndexedSamples`). Reference features can be given
    precomputed (:meth:`set_reference`), e.g. from a cache.

    Args:
        subsets: Number of subsets (torch-fidelity's default is 100).
        subset_size: Samples per subset (default 1000), clamped to the sample counts.
        seed: Seed of the subset draws (torch-fidelity's default is 2020).
    """

    higher_is_better = False

    def __init__(
        self, subsets: int = 100, subset_size: int = 1000, seed: int = SAMPLES_SEED, **kwargs
    ) -> None:
        super().__init__(("fake", "real"), **kwargs)
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed
        self.reference: Tensor | None = None

    def update(self, features: Tensor, real: bool = False, index: Tensor | None = None) -> None:
        """Add a batch of features (N x D) of produced (or, with ``real``, reference) images.

        Args:
            features: The features.
            real: They are reference images.
            index: Their global sample indices, if known (else round-robin numbering).
        """
        self._add_rows("real" if real else "fake", features.float(), index)

    def set_reference(self, features: Tensor) -> None:
        """Use precomputed reference features (N x D, in sample order) instead of updates."""
        self.reference = features

    def has_real(self) -> bool:
        """Whether reference features were given (set or updated in this process)."""
        return self.reference is not None or self._count("real") > 0

    def compute(self) -> tuple[Tensor, Tensor]:  # noqa: D102
        fake = self._ordered("fake")
        real = self._ordered("real") if self.reference is None else self.reference
        mean, std = kernel_distance(
            fake, real.to(fake.device), self.subsets, self.subset_size, seed=self.seed
        )
        return mean.float(), std.float()
