"""Near-square image grids, whatever the number of classes and of images per class.

One layout for every grid callback (``ImageGrid``, ``DepthGrid``, ``Snapshots``): images
are grouped into *units* (a class's images, an original above its reconstruction, an
image's row of depths), units are laid out in reading order, and the number of units a
row holds is the one that makes the grid closest to square in pixels. A class's images
stay on one line where that keeps the grid within 2:1; otherwise they wrap into a block.
Units are separated by grey lines, the images within a unit by white ones; blank
places are white.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.utils import make_grid

PADDING = 2  # pixels between images (and around the grid)
WHITE, GREY = 1.0, 0.5  # blank cells and gaps; the lines between units of several images
MAX_SKEW = math.log(2)  # a grid within 2:1 either way counts as near-square


def cells(images: Tensor, upscale: int = 1) -> Tensor:
    """``images`` as RGB floats in [0, 1] on the CPU, magnified ``upscale`` x (nearest)."""
    images = images.detach().float().cpu().clamp(0, 1)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if upscale > 1:
        images = F.interpolate(images, scale_factor=upscale, mode="nearest")
    return images


def _span(places: int, size: int) -> int:
    """Pixels spanned by ``places`` items of ``size`` pixels in a line, padded as make_grid."""
    return places * (size + PADDING) + PADDING


def skew(width: int, height: int) -> float:
    """How far from square a ``width`` x ``height`` image is: ``|log(width / height)|``."""
    return abs(math.log(width / height))


def columns_for(count: int, height: int, width: int) -> int:
    """Units per row that make ``count`` units of ``height`` x ``width`` px nearest square.

    Ties go to fewer blank places, then to more columns (a wide grid suits a screen).
    """
    if count <= 1:
        return 1

    def cost(columns: int) -> tuple[float, int, int]:
        shape = (_span(columns, width), _span(math.ceil(count / columns), height))
        blanks = math.ceil(count / columns) * columns - count
        return round(skew(*shape), 9), blanks, -columns

    return min(range(1, count + 1), key=cost)


def tile(units: Tensor) -> Tensor:
    """Lay ``units`` (N x 3 x h x w) in reading order, as many to a row as makes it square.

    Returns a 3 x H x W tensor in [0, 1]: grey lines between the units, blank places white.
    """
    columns = columns_for(len(units), units.shape[-2], units.shape[-1])
    blanks = math.ceil(len(units) / columns) * columns - len(units)
    units = torch.cat([units, torch.full((blanks, *units.shape[1:]), WHITE)])
    grid = make_grid(units, nrow=columns, padding=PADDING, pad_value=GREY)
    return grid if len(units) > 1 else F.pad(grid, [PADDING] * 4, value=GREY)


def _block(images: Tensor, size: int, columns: int) -> Tensor:
    """``images`` padded with blanks to ``size`` cells, ``columns`` to a row (one unit)."""
    blank = torch.full((size - len(images), *images.shape[1:]), WHITE)
    return make_grid(torch.cat([images, blank]), nrow=columns, padding=PADDING, pad_value=WHITE)


def _block_columns(classes: int, size: int, height: int, width: int) -> int:
    """Columns of one class's block: all of ``size`` if the grid stays within 2:1.

    Otherwise the block wraps to the columns that make the whole grid nearest square.
    """

    def grid_skew(columns: int) -> tuple[float, int]:
        unit_w, unit_h = _span(columns, width), _span(math.ceil(size / columns), height)
        per_row = columns_for(classes, unit_h, unit_w)
        shape = (_span(per_row, unit_w), _span(math.ceil(classes / per_row), unit_h))
        blanks = math.ceil(size / columns) * columns - size
        return round(skew(*shape), 9), blanks

    if size == 1 or grid_skew(size)[0] <= MAX_SKEW:
        return size
    return min(range(size - 1, 0, -1), key=grid_skew)


def class_sheet(images: Tensor, labels: Tensor | None, per_class: int) -> Tensor:
    """A near-square grid of ``images`` (cells) by class, classes in reading order.

    With labels, each class present is one block of ``per_class`` places (its first
    ``per_class`` images, then blanks), classes in ascending order. Without labels, each
    run of ``per_class`` consecutive images is a block, in order (images that belong
    together, e.g. an interpolation's ``[x1, mixtures..., x2]``, stay together).
    ``images`` are cells of any one size (see :func:`cells`, or :func:`pair_cells`).
    Returns a 3 x H x W tensor in [0, 1].
    """
    if labels is None:
        labels = torch.arange(len(images)) // max(per_class, 1)
    if per_class <= 1:  # one image of each class, classes ascending
        first = {int(label): i for i, label in reversed(list(enumerate(labels.tolist())))}
        return tile(images[[first[label] for label in sorted(first)]])
    groups = [images[labels == label][:per_class] for label in sorted(set(labels.tolist()))]
    columns = _block_columns(len(groups), per_class, images.shape[-2], images.shape[-1])
    blocks = torch.stack([_block(group, per_class, columns) for group in groups])
    return tile(blocks)


def pair_cells(images: Tensor, originals: Tensor, upscale: int = 1) -> Tensor:
    """Cells of two images each: an original above its reconstruction."""
    pairs = torch.stack([cells(originals, upscale), cells(images, upscale)], dim=1)
    return torch.stack(
        [make_grid(pair, nrow=1, padding=PADDING, pad_value=WHITE) for pair in pairs]
    )


def strip_cells(originals: Tensor, by_depth: list[Tensor], upscale: int = 1) -> Tensor:
    """Cells of one row each: an original, then its reconstruction from every depth."""
    columns = [cells(originals, upscale), *(cells(images, upscale) for images in by_depth)]
    strips = torch.stack(columns, dim=1)
    return torch.stack(
        [make_grid(strip, nrow=len(columns), padding=PADDING, pad_value=WHITE) for strip in strips]
    )
