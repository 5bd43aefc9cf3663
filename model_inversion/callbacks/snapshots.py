"""Snapshots of long runs: what the images look like while training goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from inversion.class_inversion import ClassInverter
from inversion.errors import InversionError
from inversion.metrics.names import unique_names
from inversion.metrics.scorer import MEAN
from inversion.models import build_classifier
from model_inversion.callbacks.image_metrics import ImageMetrics
from model_inversion.callbacks.layout import cells, class_sheet
from model_inversion.callbacks.loggers import log_image, log_scalars, log_text
from model_inversion.callbacks.selection import RoundRobin
from model_inversion.callbacks.snapshot_sources import (
    class_inverter,
    generator_samples,
    stage_ends,
    trained_generator,
    verifier_top1,
)

KEY = "snapshot"


class Snapshots(pl.Callback):
    """Log a grid of the images being made during training, to every logger.

    - Class inversion (a module with a ``ClassInverter`` as ``inverter``): the current
      batch of targets at the end of every stage of its schedule (the images at the
      native size, as ``inverter.result()`` gives them), for every
      ``every_n_target_batches``-th batch of targets. With ``steps_per_training_step`` K
      > 1 a stage end is seen at the end of the training step that contains it: the
      images are then those of up to K - 1 steps later, and the end of a batch whose
      next batch starts within the same training step is missed (K dividing the stages'
      steps avoids both).
    - Generator training (a module whose ``generator`` it trains: the conditioned
      generator, the DCGAN): every ``every_n_steps`` optimisation steps, the same
      samples each time (``per_class`` of each of the first ``max_classes`` classes, or
      ``per_class * max_classes`` fixed codes), drawn in eval mode with the global random
      state restored, so training is not changed.

    Grids are near-square, by class (:func:`~model_inversion.callbacks.layout.class_sheet`),
    at most ``per_class`` images of each of the ``max_classes`` lowest classes. Each goes
    to every logger as ``snapshot/images`` at the current global step (``log_image``) and
    to ``<log_dir>/images/snapshot-...-step<N>.png``; TensorBoard also gets a text line
    ``snapshot/what`` saying what it shows. Where there are verifiers and labels, their
    top-1 on the snapshot is logged as ``snapshot/top1_<name>`` (and the mean,
    ``snapshot/top1_verifiers``), computed on this process only. Only the global-zero
    process takes snapshots (under DDP: its own targets), and a training step with no
    snapshot due reads nothing from the device.

    Args:
        every_n_steps: Generator training: a snapshot every this many optimisation steps.
        every_n_target_batches: Class inversion: snapshots of every this many batches of
            targets (the first, the ``n + 1``-th, ...).
        per_class: Images shown per class (unlabelled: ``per_class * max_classes``).
        max_classes: Classes shown (the lowest labels).
        upscale: Nearest-neighbour magnification of small images.
        verifiers: Classifier specs whose top-1 is measured on each snapshot; None (the
            default): those of the trainer's ``ImageMetrics`` callback, if any; ``[]``:
            none.
        seed: Seed of the generators' samples.
        save_png: Also write PNG files into the run directory.
    """

    def __init__(
        self,
        every_n_steps: int = 500,
        every_n_target_batches: int = 1,
        per_class: int = 4,
        max_classes: int = 16,
        upscale: int = 1,
        verifiers: list[str] | None = None,
        seed: int = 0,
        save_png: bool = True,
    ) -> None:
        if every_n_steps < 1 or every_n_target_batches < 1 or per_class < 1 or max_classes < 1:
            raise InversionError(
                "Snapshots: every_n_steps, every_n_target_batches, per_class and "
                "max_classes must be at least 1."
            )
        self.every_n_steps, self.every_n_target_batches = every_n_steps, every_n_target_batches
        self.per_class, self.max_classes = per_class, max_classes
        self.upscale, self.seed, self.save_png = upscale, seed, save_png
        self.verifier_specs = verifiers
        self.verifiers: dict[str, nn.Module] | None = None
        self.saved: list[Path] = []
        self.logged: list[dict[str, Any]] = []  # what each snapshot showed (step, stage, top-1)
        self._last_step = 0
        self._run: Tensor | None = None  # the labels of the inverter's current run
        self._run_done = 0  # steps of that run seen

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Build the verifiers named here (bad specs fail before any work).

        The global random state is left as it was, so training draws what it would without.
        """
        if self.verifier_specs and self.verifiers is None and trainer.is_global_zero:
            named = unique_names(self.verifier_specs, reserved=[MEAN])
            with torch.random.fork_rng(devices=[]):  # building draws random weights first
                self.verifiers = {
                    name: build_classifier(spec).freeze() for name, spec in named.items()
                }

    def _verifiers(self, trainer: pl.Trainer, device: torch.device) -> dict[str, nn.Module]:
        """The verifiers to measure with, on ``device`` (those of ``ImageMetrics`` if None)."""
        verifiers = self.verifiers
        if verifiers is None and self.verifier_specs is None:
            metrics = [c for c in trainer.callbacks if isinstance(c, ImageMetrics)]  # type: ignore[attr-defined]
            scorer = metrics[0].scorer if metrics else None
            verifiers = dict(scorer.verifiers.items()) if scorer is not None else None
        for verifier in (verifiers or {}).values():
            verifier.to(device)
        return verifiers or {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start counting (a resumed run counts from its step); say if nothing can be shown."""
        self._last_step, self._run, self._run_done = trainer.global_step, None, 0
        if class_inverter(pl_module) is None and trained_generator(pl_module) is None:
            rank_zero_warn(
                f"Snapshots: {type(pl_module).__name__} has neither a class inverter nor a "
                "generator it trains; no snapshots are taken."
            )

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx
    ) -> None:
        """Take the snapshots due at this step (host-side counters only when none is)."""
        steps = trainer.global_step - self._last_step  # optimisation steps in this batch
        self._last_step = trainer.global_step
        if not trainer.is_global_zero or steps <= 0:
            return
        inverter = class_inverter(pl_module)
        if inverter is not None:
            self._class_inversion(trainer, pl_module, inverter, steps)
            return
        generator = trained_generator(pl_module)
        every = self.every_n_steps
        if generator is not None and trainer.global_step // every > (
            (trainer.global_step - steps) // every
        ):
            images, labels = generator_samples(
                generator, self.per_class, self.max_classes, self.seed, pl_module.device
            )
            what = f"{type(generator).__name__} samples at step {trainer.global_step}"
            self._log(trainer, pl_module, images, labels, f"step{trainer.global_step}", what)

    def _class_inversion(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        inverter: ClassInverter,
        steps: int,
    ) -> None:
        """Snapshot the inverter's images if a stage of its current run ended."""
        run, done = inverter.labels, inverter.step_index
        if run is None or (run is self._run and done == self._run_done):
            return  # no step of a run in this batch (an empty batch)
        before = self._run_done if run is self._run else max(done - steps, 0)
        self._run, self._run_done = run, done
        ended = [i for i, end in enumerate(stage_ends(inverter)) if before < end <= done]
        batch = (trainer.global_step - done) // inverter.total_steps
        if not ended or batch % self.every_n_target_batches:
            return
        stage = ended[-1]
        images = inverter.result()
        late = done - stage_ends(inverter)[stage]
        what = (
            f"targets batch {batch}, end of stage {stage + 1} of {len(inverter.stages)} "
            f"({inverter.stages[stage].size} px)"
            + (f", {late} steps later" if late else "")
            + f", step {trainer.global_step}"
        )
        name = f"batch{batch}-stage{stage + 1}-step{trainer.global_step}"
        self._log(trainer, pl_module, images, run, name, what)

    def _log(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        images: Tensor,
        labels: Tensor | None,
        name: str,
        what: str,
    ) -> None:
        """Log the grid of ``images`` and the verifiers' top-1 on all of them."""
        shown = RoundRobin[Tensor](
            self.per_class * self.max_classes, self.per_class, self.max_classes
        )

        def fetch(positions: list[int]) -> list[Tensor]:
            return list(cells(images[torch.tensor(positions, device=images.device)], self.upscale))

        host_labels = None if labels is None else labels.tolist()
        shown.add(host_labels, len(images), fetch)
        picked = shown.pick()
        sheet_labels = None if labels is None else torch.tensor([label for label, _ in picked])
        grid = class_sheet(torch.stack([cell for _, cell in picked]), sheet_labels, self.per_class)
        png = f"{KEY}-{name}.png" if self.save_png else None
        written = log_image(trainer, f"{KEY}/images", grid, png_name=png)
        if self.save_png:
            self.saved.extend(written[:1])
        log_text(trainer, f"{KEY}/what", what)
        top1: dict[str, float] = {}
        if labels is not None:
            top1 = verifier_top1(self._verifiers(trainer, pl_module.device), images, labels)
            log_scalars(trainer, {f"{KEY}/{key}": value for key, value in top1.items()})
        self.logged.append(
            {"step": trainer.global_step, "what": what, "shape": tuple(grid.shape), **top1}
        )
