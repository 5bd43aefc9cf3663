"""Write produced images as PNG files and stamp the folder as synthesised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch.distributed as dist

from inversion.data.synthesised import MANIFEST, read_manifest, write_manifest, write_png
from inversion.errors import InversionError
from model_inversion.callbacks.outputs import produced_images

STAGES = ("validate", "test")


class SaveImages(pl.Callback):
    """Save the images that ``validation_step``/``test_step`` return, with a stamp.

    Images go to ``dirpath/<class index>/<rank>-<n>.png`` (or ``dirpath/<rank>-<n>.png``
    without labels), so ``python evaluate.py folder DIRPATH`` scores them, and
    ``dirpath/synthesised.json`` records who produced them and the SHA-256 of every
    file. That stamp is what lets a zero-shot module (``LayerwiseInversion``) train on
    the folder through ``SyntheticImagesDataModule(source=DIRPATH)``. Each epoch of a
    chosen stage replaces the folder's previous stamped images; a folder holding
    anything else is refused, and so is a stamp listing a file outside the folder
    (nothing is deleted outside ``dirpath``).

    Args:
        dirpath: The output folder.
        stages: ``validate`` and/or ``test``: the loops whose images are saved.
    """

    def __init__(self, dirpath: str, stages: list[str] | None = None) -> None:
        stages = list(stages or STAGES)
        unknown = sorted(set(stages) - set(STAGES))
        if unknown:
            raise InversionError(f"Unknown stages {unknown}; choose from {STAGES}.")
        self.dirpath, self.stages = Path(dirpath).expanduser(), stages
        self.files: dict[str, str] = {}
        self.count = 0
        self.saved: list[Path] = []

    def _active(self, trainer: pl.Trainer, stage: str) -> bool:
        return stage in self.stages and not trainer.sanity_checking

    def _stamped_files(self) -> list[Path]:
        """The files the folder's stamp lists, each checked to resolve inside the folder.

        Symlinks are followed (the file's own and its folders'), so a listed path that leads
        outside ``dirpath`` by ``..``, an absolute path or a symlink is refused before
        anything is deleted: only a stamp SaveImages did not write lists one.
        """
        root = self.dirpath.resolve()
        files = []
        for relative in read_manifest(self.dirpath)["files"]:
            path = (root / relative).resolve()
            if root not in path.parents or path.is_dir():
                where = "a folder" if root in path.parents else f"outside {root}"
                raise InversionError(
                    f"SaveImages: {root / MANIFEST} lists {relative!r}, which resolves to "
                    f"{path}, {where}; SaveImages did not write that stamp, so nothing was "
                    "deleted. Choose a new folder, or remove the stamp by hand."
                )
            files.append(self.dirpath / relative)  # a symlink inside: the link, not its target
        return files

    def _clear(self) -> None:
        """Remove what an earlier epoch stamped; refuse a folder with anything else."""
        if not self.dirpath.exists():
            return
        if (self.dirpath / MANIFEST).is_file():
            for path in self._stamped_files():
                path.unlink(missing_ok=True)
            (self.dirpath / MANIFEST).unlink(missing_ok=True)
            for folder in self.dirpath.iterdir():
                if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
                    folder.rmdir()
        if any(self.dirpath.iterdir()):
            raise InversionError(
                f"SaveImages: {self.dirpath} is not empty and holds no earlier stamped images; "
                "choose a new folder so real and synthesised images cannot mix."
            )

    def _start(self, trainer: pl.Trainer, stage: str) -> None:
        if not self._active(trainer, stage):
            return
        if trainer.is_global_zero:
            self._clear()
        trainer.strategy.barrier("save_images_clear")
        self.files, self.count = {}, 0

    def _save(self, trainer: pl.Trainer, stage: str, outputs: Any) -> None:
        produced = produced_images(outputs)
        if produced is None or not self._active(trainer, stage):
            return
        labels = produced.get("labels")
        n = len(produced["images"])
        classes: list[Any] = labels.tolist() if labels is not None else [None] * n
        for image, label in zip(produced["images"], classes, strict=True):
            name = f"{trainer.global_rank}-{self.count:06d}.png"
            relative = name if label is None or label < 0 else f"{int(label)}/{name}"
            self.files[relative] = write_png(image, self.dirpath / relative)
            self.count += 1

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not self._active(trainer, stage):
            return
        parts: list[dict[str, str] | None] = [self.files]
        if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
            parts = [None] * trainer.world_size
            dist.all_gather_object(parts, self.files)
        if trainer.is_global_zero:
            files = {k: v for part in parts if part for k, v in part.items()}
            if files:
                producer = {
                    "module": type(pl_module).__name__,
                    "hparams": dict(pl_module.hparams),
                    "stage": stage,
                    "global_step": trainer.global_step,
                }
                self.saved.append(write_manifest(self.dirpath, files, producer))
        trainer.strategy.barrier("save_images_stamp")

    def on_validation_epoch_start(self, trainer, pl_module) -> None:  # noqa: D102
        self._start(trainer, "validate")

    def on_test_epoch_start(self, trainer, pl_module) -> None:  # noqa: D102
        self._start(trainer, "test")

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        """Write the images a validation step returned."""
        self._save(trainer, "validate", outputs)

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        """Write the images a test step returned."""
        self._save(trainer, "test", outputs)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102
        self._finish(trainer, pl_module, "validate")

    def on_test_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102
        self._finish(trainer, pl_module, "test")
