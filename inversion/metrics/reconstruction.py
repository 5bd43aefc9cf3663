"""Reconstruction quality of images that invert real ones: PSNR, SSIM, agreement.

Every function compares produced images with the originals they reconstruct, pair by
pair (both N x C x H x W in [0, 1]) and returns one value per pair, so callers can
average, gather across processes or tabulate per image.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn
from torchmetrics.functional.image import structural_similarity_index_measure

from inversion.errors import InversionError


def check_pairs(images: Tensor, originals: Tensor) -> None:
    """Raise a clear error unless ``images`` and ``originals`` are paired image batches."""
    if images.ndim != 4 or images.shape != originals.shape:
        raise InversionError(
            "reconstructions and originals must be paired N x C x H x W batches of the same "
            f"shape; got {tuple(images.shape)} and {tuple(originals.shape)}."
        )


def psnr(images: Tensor, originals: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio (dB) of each pair; identical pairs give +inf."""
    check_pairs(images, originals)
    mse = (images.float() - originals.float()).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)


def ssim(images: Tensor, originals: Tensor, data_range: float = 1.0) -> Tensor:
    """Structural similarity of each pair (Gaussian window 11, sigma 1.5, torchmetrics)."""
    check_pairs(images, originals)
    # a tuple only with return_full_image or return_contrast_sensitivity
    return cast(
        Tensor,
        structural_similarity_index_measure(
            images.float(), originals.float(), data_range=data_range, reduction="none"
        ),
    )


@torch.no_grad()
def agreement(classifier: nn.Module, images: Tensor, originals: Tensor) -> Tensor:
    """1.0 where ``classifier`` gives a reconstruction the class it gives its original."""
    check_pairs(images, originals)
    return (classifier(images).argmax(1) == classifier(originals).argmax(1)).float()
