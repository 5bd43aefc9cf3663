"""Labelled figures for the benchmark tables: image grids, curves and heat maps (matplotlib).

Each helper draws on its own ``Figure`` with the Agg canvas (no pyplot, no global state),
writes one PNG at :data:`DPI` whose size is the figure's (``figsize * DPI``, no tight
bounding box), with no software or date in the metadata, and returns the figure so that
callers and tests can read its titles and labels. Re-running on the same inputs with the
same matplotlib gives the same file.

    labelled_grid(rows_of_images, ["0", "1"], ["PII", "DeepDream"], "grid.png")
    curves([0, 0.5, 1], {"standard": [0.99, 0.4, 0.1]}, "eps", "accuracy", "acc.png")
    heatmap([[0.9, 0.2], [0.3, 0.8]], ["cnn", "vit"], ["cnn", "vit"], "t.png", "fooling rate")

Needs the ``figures`` extra (``pip install -e .[figures]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor
from torchvision.utils import make_grid

DPI = 100
FONT_SIZE = 9
CELL_PIXELS = 64  # images are upscaled (nearest) to at least this many pixels a side
PAD = 2  # white pixels between the cells of a grid
# Rough text extents in pixels at FONT_SIZE and DPI (DejaVu Sans), to size the margins.
CHAR_WIDTH = 6.5
LINE_HEIGHT = 14
TITLE_LINE_HEIGHT = 17  # a line of a title (FONT_SIZE + 1)
MARKERS = "osD^vP*Xhp"
LEGEND_INSIDE = 4  # curves: more series than this put the legend right of the axes


def _text_extent(titles: Sequence[str]) -> tuple[int, int]:
    """Widest line (characters) and most lines among ``titles``."""
    lines = [str(title).split("\n") for title in titles] or [[""]]
    return max(len(line) for parts in lines for line in parts), max(len(p) for p in lines)


def _figure(width: float, height: float, **options) -> Figure:
    """A figure of ``width`` x ``height`` pixels (rounded: the PNG has exactly that size)."""
    return Figure(figsize=(round(width) / DPI, round(height) / DPI), dpi=DPI, **options)


def _save(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG at :data:`DPI` without metadata that changes between runs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    return path


def _as_rows(images: list[list[Tensor]] | Tensor) -> list[list[Tensor]]:
    """``images`` as rows of C x H x W tensors (a tensor is R x C' x ch x H x W)."""
    if isinstance(images, Tensor):
        if images.dim() != 5:
            shape = tuple(images.shape)
            raise ValueError(f"expected rows x columns x C x H x W images, got {shape}")
        return [list(row) for row in images]
    return [list(row) for row in images]


def grid_image(images: list[list[Tensor]] | Tensor, upscale: int | None = None) -> Tensor:
    """The cells of ``images`` on one 3 x H x W canvas in [0, 1], white between cells.

    Grayscale cells become RGB; every cell is upscaled with nearest neighbours (default:
    to at least :data:`CELL_PIXELS` a side).

    Raises:
        ValueError: Rows of different lengths, cells of different sizes, or no cells.
    """
    rows = _as_rows(images)
    if not rows or not rows[0] or any(len(row) != len(rows[0]) for row in rows):
        raise ValueError("a grid needs rows of one and the same non-zero length")
    cells = torch.stack([cell.detach().float().cpu() for row in rows for cell in row])
    cells = cells.clamp(0, 1)
    if cells.shape[1] == 1:
        cells = cells.expand(-1, 3, -1, -1)
    factor = upscale or max(1, math.ceil(CELL_PIXELS / max(cells.shape[-2:])))
    if factor > 1:
        cells = F.interpolate(cells, scale_factor=factor, mode="nearest")
    return make_grid(cells, nrow=len(rows[0]), padding=PAD, pad_value=1.0)


def labelled_grid(
    images: list[list[Tensor]] | Tensor,
    row_titles: Sequence[str],
    col_titles: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Figure:
    """Images in rows and columns with a title for each row (left) and column (top).

    Args:
        images: Rows of C x H x W images in [0, 1] (1 or 3 channels), or one
            rows x columns x C x H x W tensor.
        row_titles: One title per row ("\\n" breaks a line).
        col_titles: One title per column.
        path: The PNG to write.
        title: A title above the whole grid.

    Returns:
        The figure: one axes whose y tick labels are the row titles and x tick labels
        (at the top) the column titles, without tick marks.

    Raises:
        ValueError: Titles that do not match the grid's rows or columns.
    """
    rows = _as_rows(images)
    if len(row_titles) != len(rows) or (rows and len(col_titles) != len(rows[0])):
        raise ValueError(
            f"{len(row_titles)} row and {len(col_titles)} column titles for a grid of "
            f"{len(rows)} x {len(rows[0]) if rows else 0} images"
        )
    row_chars, _ = _text_extent(row_titles)
    col_chars, col_lines = _text_extent(col_titles)
    # cells wide enough for their titles (up to twice CELL_PIXELS: break longer lines)
    pixels = max(CELL_PIXELS, min(col_chars * CHAR_WIDTH + 6, 2 * CELL_PIXELS))
    side = max(rows[0][0].shape[-2:])
    canvas = grid_image(rows, max(1, math.ceil(pixels / side)))
    height, width = canvas.shape[1:]
    cell_h, cell_w = (height - PAD) / len(rows), (width - PAD) / len(rows[0])
    left = 16 + row_chars * CHAR_WIDTH
    title_height = 6 + TITLE_LINE_HEIGHT * (1 + title.count("\n")) if title else 0
    top = 12 + col_lines * LINE_HEIGHT + title_height
    right = max(8.0, col_chars * CHAR_WIDTH / 2 - cell_w / 2)  # the last title's overhang
    if title:
        right = max(right, len(max(title.split("\n"), key=len)) * CHAR_WIDTH - left - width)
    bottom = 8
    fig_w, fig_h = round(left + width + right), round(top + height + bottom)
    figure = _figure(fig_w, fig_h)
    axes = figure.add_axes((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
    axes.imshow(canvas.permute(1, 2, 0).numpy(), interpolation="nearest", aspect="equal")
    axes.set_yticks([PAD / 2 + cell_h * (i + 0.5) for i in range(len(rows))], list(row_titles))
    axes.set_xticks([PAD / 2 + cell_w * (j + 0.5) for j in range(len(rows[0]))], list(col_titles))
    axes.xaxis.tick_top()
    axes.tick_params(length=0, labelsize=FONT_SIZE, pad=3)
    for spine in axes.spines.values():
        spine.set_visible(False)
    if title:
        figure.suptitle(title, fontsize=FONT_SIZE + 1, y=1 - 4 / fig_h, va="top")
    _save(figure, path)
    return figure


def curves(
    x: Sequence[float],
    series: dict[str, list[float]],
    xlabel: str,
    ylabel: str,
    path: str | Path,
    errors: dict[str, list[tuple[float, float]]] | None = None,
    title: str | None = None,
) -> Figure:
    """One line with markers per series against ``x``, with a legend.

    Args:
        x: The shared x values.
        series: Name -> one y value per x.
        xlabel: Label of the x axis.
        ylabel: Label of the y axis.
        path: The PNG to write.
        errors: Name -> one (low, high) interval per x, drawn as error bars for the
            series that have one.
        title: A title above the axes.

    Returns:
        The figure (one axes; its legend, or the figure's beyond :data:`LEGEND_INSIDE`
        series, names the series).

    Raises:
        ValueError: A series or interval list whose length is not ``len(x)``.
    """
    errors = errors or {}
    lengths = {name: len(values) for name, values in series.items()}
    lengths.update({f"{name} (intervals)": len(values) for name, values in errors.items()})
    for name, length in lengths.items():
        if length != len(x):
            raise ValueError(f"{name!r} has {length} values for {len(x)} x values")
    outside = len(series) > LEGEND_INSIDE  # a long legend would hide the lines
    legend_width = _text_extent(list(series))[0] * CHAR_WIDTH * 0.9 + 50 if outside else 0
    figure = _figure(640 + legend_width, 400, layout="constrained")
    axes = figure.add_subplot()
    for index, (name, values) in enumerate(series.items()):
        marker = MARKERS[index % len(MARKERS)]
        if name in errors:
            below = [v - low for v, (low, _) in zip(values, errors[name], strict=True)]
            above = [high - v for v, (_, high) in zip(values, errors[name], strict=True)]
            axes.errorbar(x, values, yerr=[below, above], marker=marker, capsize=3, label=name)
        else:
            axes.plot(x, values, marker=marker, label=name)
    axes.set_xticks(list(x))
    axes.set_xlabel(xlabel, fontsize=FONT_SIZE + 1)
    axes.set_ylabel(ylabel, fontsize=FONT_SIZE + 1)
    axes.tick_params(labelsize=FONT_SIZE)
    axes.grid(alpha=0.3)
    if outside:
        figure.legend(loc="outside right upper", fontsize=FONT_SIZE - 1)
    else:
        axes.legend(fontsize=FONT_SIZE - 1)
    if title:
        axes.set_title(title, fontsize=FONT_SIZE + 1)
    _save(figure, path)
    return figure


def heatmap(
    matrix: Sequence[Sequence[float]] | Tensor,
    row_titles: Sequence[str],
    col_titles: Sequence[str],
    path: str | Path,
    colorbar_label: str,
    title: str | None = None,
    value_format: str = ".2f",
    limits: tuple[float, float] | None = (0.0, 1.0),
) -> Figure:
    """A matrix as coloured cells with its values written in them, and a colour bar.

    Args:
        matrix: Rows x columns values.
        row_titles: One title per row (left).
        col_titles: One title per column (bottom, slanted).
        path: The PNG to write.
        colorbar_label: What the colours measure.
        title: A title above the cells.
        value_format: Format of the numbers in the cells.
        limits: The colour scale's (low, high); None: the matrix's range.

    Returns:
        The figure: the cells' axes first, then the colour bar's.

    Raises:
        ValueError: Titles that do not match the matrix.
    """
    values = torch.as_tensor(matrix, dtype=torch.float64)
    if values.dim() != 2 or values.shape != (len(row_titles), len(col_titles)):
        raise ValueError(
            f"a {tuple(values.shape)} matrix with {len(row_titles)} row and "
            f"{len(col_titles)} column titles"
        )
    rows, cols = values.shape
    row_chars, _ = _text_extent(row_titles)
    col_chars, _ = _text_extent(col_titles)
    width = row_chars * CHAR_WIDTH + 70 * cols + 140
    height = 60 * rows + col_chars * CHAR_WIDTH * 0.7 + 70
    figure = _figure(width, height, layout="constrained")
    axes = figure.add_subplot()
    low, high = limits if limits else (float(values.min()), float(values.max()))
    image = axes.imshow(values.numpy(), cmap="viridis", vmin=low, vmax=high, aspect="auto")
    axes.set_yticks(range(rows), list(row_titles))
    axes.set_xticks(range(cols), list(col_titles), rotation=30, ha="right")
    axes.tick_params(length=0, labelsize=FONT_SIZE)
    middle = (low + high) / 2
    for i in range(rows):
        for j in range(cols):
            value = float(values[i, j])
            colour = "black" if value > middle else "white"  # viridis is light at the top
            axes.text(j, i, format(value, value_format), ha="center", va="center",
                      color=colour, fontsize=FONT_SIZE)  # fmt: skip
    bar = figure.colorbar(image, ax=axes)
    bar.set_label(colorbar_label, fontsize=FONT_SIZE + 1)
    bar.ax.tick_params(labelsize=FONT_SIZE)
    if title:
        axes.set_title(title, fontsize=FONT_SIZE + 1)
    _save(figure, path)
    return figure
