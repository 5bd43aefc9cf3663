"""The embedded benchmark data: scikit-learn's 8x8 digits, as tensors in [0, 1].

scikit-learn ships the 1,797 real images inside the package, so nothing is downloaded.
The split is fixed (stratified, seed 0): 1,257 train, 180 validation, 360 test images.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from inversion.errors import InversionError

SPLITS = ("train", "val", "test")
NUM_CLASSES = 10
SPLIT_SEED = 0
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1


@lru_cache(maxsize=1)
def _split_indices() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    labels = load_digits().target
    indices = np.arange(len(labels))
    rest, test = train_test_split(
        indices, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    val_size = VAL_FRACTION / (1 - TEST_FRACTION)
    train, val = train_test_split(
        rest, test_size=val_size, stratify=labels[rest], random_state=SPLIT_SEED
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def load_digits_split(split: str, image_size: int = 32, channels: int = 1) -> tuple[Tensor, Tensor]:
    """Return one split of the digits data.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        image_size: Output side length; the 8x8 images are resized bilinearly.
        channels: 1 (grayscale) or 3 (the gray image replicated).

    Returns:
        ``(images, labels)``: float images N x channels x size x size in [0, 1] and int64
        labels in 0..9.
    """
    if split not in SPLITS:
        raise InversionError(f"Unknown digits split {split!r}; choose one of {SPLITS}.")
    if channels not in (1, 3):
        raise InversionError(f"Digits images have 1 or 3 channels, not {channels}.")
    if image_size < 8:
        raise InversionError(f"Digits image_size must be at least 8, got {image_size}.")
    from sklearn.datasets import load_digits

    data = load_digits()
    idx = _split_indices()[split]
    images = torch.from_numpy(data.images[idx]).float().div_(16.0).unsqueeze(1)
    if image_size != 8:
        images = F.interpolate(
            images, size=(image_size, image_size), mode="bilinear", align_corners=False
        ).clamp_(0.0, 1.0)
    images = images.expand(-1, channels, -1, -1).contiguous()
    labels = torch.from_numpy(data.target[idx]).long()
    return images, labels


def random_translate(
    images: Tensor, max_shift: int, generator: torch.Generator | None = None
) -> Tensor:
    """Shift each image by its own random integer offset, filling with zeros.

    Vectorised over the batch (one ``grid_sample`` call).

    Args:
        images: N x C x H x W.
        max_shift: Largest shift in pixels, in each direction.
        generator: Source of randomness on the CPU (default: the global one).

    Returns:
        The shifted images.
    """
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)
    shifts = shifts.to(images.device, images.dtype)
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = -2 * shifts[:, 0] / w
    theta[:, 1, 2] = -2 * shifts[:, 1] / h
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)
