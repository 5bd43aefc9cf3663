"""Reconstructions from every depth beside their originals, to every logger and PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from model_inversion.callbacks.layout import strip_cells, tile
from model_inversion.callbacks.loggers import log_image, log_text
from model_inversion.callbacks.outputs import produced_images
from model_inversion.callbacks.selection import RoundRobin


class DepthGrid(pl.Callback):
    """Show "original | from layer 1 | from layer 2 | ..." strips of a layer-wise inverter.

    Consumes the ``depths`` entry (``{layer: reconstructions}``, in layer order) and the
    ``originals`` that ``LayerwiseInversion``'s validation and test steps return. Where
    the steps return ``labels``, the ``num_images`` strips cover every class present
    (round-robin over the classes in label order, :class:`RoundRobin`) and are shown
    class by class; otherwise the first ``num_images``. The strips are laid out
    near-square (several to a row, grey lines between them; see
    :mod:`~model_inversion.callbacks.layout`). The grid goes to every logger as
    ``val/depths``/``test/depths`` (``log_image``) and to
    ``<log_dir>/images/<stage>-depths-step<N>.png``; the column order is written to the
    TensorBoard text tag ``<stage>/depths_columns``.

    Args:
        num_images: Strips (originals) shown.
        upscale: Nearest-neighbour magnification of small images.
        save_png: Also write PNG files into the run directory.
    """

    def __init__(self, num_images: int = 16, upscale: int = 2, save_png: bool = True) -> None:
        self.num_images, self.upscale, self.save_png = num_images, upscale, save_png
        self.kept: RoundRobin[Tensor] = RoundRobin(num_images)
        self.layers: list[str] = []
        self.saved: list[Path] = []

    def _collect(self, trainer: pl.Trainer, outputs: Any) -> None:
        produced = produced_images(outputs)
        if produced is None or "depths" not in produced or "originals" not in produced:
            return
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        originals, depths = produced["originals"].detach(), produced["depths"]
        self.layers = list(depths)
        labels = produced.get("labels")

        def fetch(positions: list[int]) -> list[Tensor]:
            index = torch.tensor(positions, device=originals.device)
            by_depth = [images.detach()[index] for images in depths.values()]
            return list(strip_cells(originals[index], by_depth, self.upscale))

        self.kept.add(None if labels is None else labels.tolist(), len(originals), fetch)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        """Take the reconstructions a validation step returned."""
        self._collect(trainer, outputs)

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        """Take the reconstructions a test step returned."""
        self._collect(trainer, outputs)

    def _write(self, trainer: pl.Trainer, prefix: str) -> None:
        picked = self.kept.pick()
        self.kept.clear()
        if not picked:
            return
        grid = tile(torch.stack([strip for _, strip in picked]))
        name = f"{prefix}-depths-step{trainer.global_step}.png"
        written = log_image(
            trainer, f"{prefix}/depths", grid, png_name=name if self.save_png else None
        )
        if self.save_png:
            self.saved.extend(written[:1])
        log_text(trainer, f"{prefix}/depths_columns", " | ".join(["original", *self.layers]))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102
        self._write(trainer, "val")

    def on_test_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102
        self._write(trainer, "test")
