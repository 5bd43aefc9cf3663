"""Synthetic noise images in [0, 1] (label-free, data-free inputs)."""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from inversion.errors import InversionError

NoiseKind = Literal["gaussian", "uniform", "smooth"]
NOISE_KINDS: tuple[str, ...] = get_args(NoiseKind)


def noise_images(
    kind: NoiseKind,
    num: int,
    channels: int,
    size: int,
    generator: torch.Generator | None = None,
    std: float = 0.25,
    smooth_factor: int = 8,
) -> Tensor:
    """Draw a batch of noise images in [0, 1].

    Args:
        kind: ``gaussian`` (0.5 + std * N(0, 1), clipped), ``uniform`` (U(0, 1)) or
            ``smooth`` (uniform noise at size / smooth_factor, upsampled bicubically:
            low-frequency blobs).
        num: Number of images.
        channels: Channels per image.
        size: Side length.
        generator: Source of randomness on the CPU (default: the global one).
        std: Standard deviation of the Gaussian kind.
        smooth_factor: Down-sampling factor of the smooth kind.

    Returns:
        num x channels x size x size tensor in [0, 1].
    """
    shape = (num, channels, size, size)
    if kind == "gaussian":
        return (0.5 + std * torch.randn(shape, generator=generator)).clamp_(0.0, 1.0)
    if kind == "uniform":
        return torch.rand(shape, generator=generator)
    if kind == "smooth":
        low = max(size // smooth_factor, 2)
        coarse = torch.rand((num, channels, low, low), generator=generator)
        fine = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
        return fine.clamp_(0.0, 1.0)
    raise InversionError(f"Unknown noise kind {kind!r}; choose one of {NOISE_KINDS}.")
