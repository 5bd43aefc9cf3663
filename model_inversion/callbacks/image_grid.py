"""Image grids of what a module produces, near-square and by class, to every logger and PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from model_inversion.callbacks.layout import cells, class_sheet, pair_cells
from model_inversion.callbacks.loggers import log_image
from model_inversion.callbacks.outputs import produced_images
from model_inversion.callbacks.selection import RoundRobin


class ImageGrid(pl.Callback):
    """Show produced images per class in every logger and write them as PNG files.

    Images are collected on the global-zero process: up to ``per_class`` of each of the
    ``max_classes`` lowest classes present, whatever the order of the loader (see
    :class:`~model_inversion.callbacks.selection.RoundRobin`); unlabelled images, the
    first ``per_class * max_classes``. The grid is near-square whatever the number of
    classes (:mod:`~model_inversion.callbacks.layout`): each class a block of
    ``per_class`` places, classes in reading order; without labels, each run of
    ``per_class`` images is a block (e.g. an interpolation's row). Reconstructions (steps
    that return ``originals``) are shown as pairs, each original above its reconstruction,
    picked and laid out by class the same way. The grid goes to every logger as ``val/images`` or
    ``test/images`` (``model_inversion.callbacks.loggers.log_image``: TensorBoard, W&B,
    MLflow, a PNG for the others) and to ``<log_dir>/images/<stage>-epoch<E>-step<N>.png``.

    Args:
        per_class: Images (or pairs) shown per class.
        max_classes: Classes shown, the lowest labels present.
        upscale: Nearest-neighbour magnification of small images.
        save_png: Also write PNG files into the run directory.
    """

    def __init__(
        self, per_class: int = 8, max_classes: int = 10, upscale: int = 2, save_png: bool = True
    ) -> None:
        self.per_class, self.max_classes = per_class, max_classes
        self.upscale, self.save_png = upscale, save_png
        total = per_class * max_classes
        self.kept: RoundRobin[Tensor] = RoundRobin(total, per_class, max_classes)
        self.saved: list[Path] = []

    def _collect(self, trainer: pl.Trainer, outputs: Any) -> None:
        produced = produced_images(outputs)
        if produced is None or not trainer.is_global_zero or trainer.sanity_checking:
            return
        images = produced["images"].detach()
        originals = produced.get("originals")
        labels = produced.get("labels")

        def fetch(positions: list[int]) -> list[Tensor]:
            index = torch.tensor(positions, device=images.device)
            if originals is None:
                return list(cells(images[index], self.upscale))
            return list(pair_cells(images[index], originals.detach()[index], self.upscale))

        self.kept.add(None if labels is None else labels.tolist(), len(images), fetch)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        """Take the images a validation step returned."""
        self._collect(trainer, outputs)

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        """Take the images a test step returned."""
        self._collect(trainer, outputs)

    def _grid(self) -> Tensor | None:
        picked = self.kept.pick()
        if not picked:
            return None
        images = torch.stack([item for _, item in picked])
        if any(label is None for label, _ in picked):
            return class_sheet(images, None, self.per_class)
        labels = torch.tensor([label for label, _ in picked])
        return class_sheet(images, labels, self.per_class)

    def _write(self, trainer: pl.Trainer, prefix: str) -> None:
        grid = self._grid()
        self.kept.clear()
        if grid is None:
            return
        name = f"{prefix}-epoch{trainer.current_epoch:03d}-step{trainer.global_step}.png"
        written = log_image(
            trainer, f"{prefix}/images", grid, png_name=name if self.save_png else None
        )
        if self.save_png:
            self.saved.extend(written[:1])

    def on_validation_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102
        self._write(trainer, "val")

    def on_test_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102
        self._write(trainer, "test")
