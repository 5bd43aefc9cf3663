"""Image grids of what a module produces: one row per class, to every logger and PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from inversion.visual import class_grid, pair_grid
from model_inversion.callbacks.loggers import log_image
from model_inversion.callbacks.outputs import produced_images


class ImageGrid(pl.Callback):
    """Show produced images per class in every logger and write them as PNG files.

    Images are collected on the global-zero process (up to ``per_class`` for each of up
    to ``max_classes`` classes); the grid goes to every logger as ``val/images`` or
    ``test/images`` (``model_inversion.callbacks.loggers.log_image``: TensorBoard, W&B,
    MLflow, a PNG for the others) and to ``<log_dir>/images/<stage>-epoch<E>-step<N>.png``.
    Reconstructions
    (steps that return ``originals``) are shown as rows of originals above rows of their
    reconstructions, ``per_class`` pairs a row, up to ``max_classes`` row pairs.

    Args:
        per_class: Images shown per class (the columns).
        max_classes: Classes shown (the rows), lowest labels first.
        upscale: Nearest-neighbour magnification of small images.
        save_png: Also write PNG files into the run directory.
    """

    def __init__(
        self, per_class: int = 8, max_classes: int = 10, upscale: int = 2, save_png: bool = True
    ) -> None:
        self.per_class, self.max_classes = per_class, max_classes
        self.upscale, self.save_png = upscale, save_png
        self.rows: dict[int, list[Tensor]] = {}
        self.unlabelled: list[Tensor] = []
        self.pairs: list[tuple[Tensor, Tensor]] = []
        self.saved: list[Path] = []

    def _collect(self, trainer: pl.Trainer, outputs: Any) -> None:
        produced = produced_images(outputs)
        if produced is None or not trainer.is_global_zero or trainer.sanity_checking:
            return
        images = produced["images"].detach()
        if "originals" in produced:
            room = self.per_class * self.max_classes - len(self.pairs)
            originals = produced["originals"].detach()[:room].float().cpu()
            self.pairs += list(zip(images[:room].float().cpu(), originals, strict=True))
            return
        if "labels" not in produced:
            if len(self.unlabelled) < self.per_class * self.max_classes:
                self.unlabelled.extend(images.float().cpu())
            return
        for image, label in zip(images, produced["labels"].tolist(), strict=True):
            row = self.rows.setdefault(label, [])
            if len(row) < self.per_class:
                row.append(image.float().cpu())

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
        if self.pairs:
            images = torch.stack([image for image, _ in self.pairs])
            originals = torch.stack([original for _, original in self.pairs])
            return pair_grid(images, originals, self.per_class, self.upscale)
        if self.rows:
            shown = sorted(self.rows)[: self.max_classes]
            images = torch.stack([img for label in shown for img in self.rows[label]])
            labels = torch.tensor([label for label in shown for _ in self.rows[label]])
            return class_grid(images, labels, self.per_class, self.upscale)
        if self.unlabelled:
            return class_grid(torch.stack(self.unlabelled), None, self.per_class, self.upscale)
        return None

    def _write(self, trainer: pl.Trainer, prefix: str) -> None:
        grid = self._grid()
        self.rows, self.unlabelled, self.pairs = {}, [], []
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
