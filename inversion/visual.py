"""Image grids and figures: one row per class, reconstructions beside their originals.

Used by the callbacks (TensorBoard and PNG), ``generate.py`` and the benchmark tables.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.utils import make_grid


def class_grid(images: Tensor, labels: Tensor | None, per_row: int, upscale: int = 1) -> Tensor:
    """Arrange images in a grid: one row per class (sorted), up to ``per_row`` each.

    Without labels the images fill rows of ``per_row`` in order. Missing cells stay
    blank. Returns a 3 x H x W tensor in [0, 1].
    """
    images = images.float().clamp(0, 1)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if upscale > 1:
        images = F.interpolate(images, scale_factor=upscale, mode="nearest")
    if labels is None:
        return make_grid(images, nrow=per_row, padding=2, pad_value=1.0)
    cells = []
    for label in sorted(set(labels.tolist())):
        row = images[labels == label][:per_row]
        blank = torch.ones(per_row - len(row), *images.shape[1:])
        cells.append(torch.cat([row, blank]))
    return make_grid(torch.cat(cells), nrow=per_row, padding=2, pad_value=1.0)


def pair_grid(images: Tensor, originals: Tensor, per_row: int, upscale: int = 1) -> Tensor:
    """Originals above their reconstructions: row pairs of ``per_row`` images each.

    Returns a 3 x H x W tensor in [0, 1]; a last, shorter group is padded with blanks.
    """
    rows = []
    for start in range(0, len(images), per_row):
        for batch in (originals, images):
            row = batch[start : start + per_row].float()
            blank = torch.ones(per_row - len(row), *row.shape[1:])
            rows.append(torch.cat([row, blank]))
    return class_grid(torch.cat(rows), None, per_row, upscale)


def depth_grid(originals: Tensor, by_depth: list[Tensor], upscale: int = 1) -> Tensor:
    """One row per image: the original, then its reconstruction from each depth in order.

    Returns a 3 x H x W tensor in [0, 1].
    """
    columns = [originals.float().cpu(), *(images.float().cpu() for images in by_depth)]
    cells = torch.stack(columns, dim=1).flatten(0, 1)
    return class_grid(cells, None, len(columns), upscale)
