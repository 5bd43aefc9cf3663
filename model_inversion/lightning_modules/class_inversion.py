"""Class inversion (PII, DeepInversion, DeepDream) as a LightningModule: wiring only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from inversion import seeds
from inversion.class_inversion import ClassInverter, RecipeName, recipe_from
from inversion.errors import InversionError
from inversion.models import ImageClassifier, build_classifier
from model_inversion.compiling import compile_in_place
from model_inversion.lightning_modules.base import TargetTask
from model_inversion.lightning_modules.lightning_internals import count_manual_optimizer_step
from model_inversion.lightning_modules.strategies import refuse_wrapping_ddp


class ClassInversion(TargetTask):
    """Optimise images of target classes against a frozen classifier.

    Pairs with ``ClassTargetsDataModule``: each training step is one optimisation step of
    the current batch of targets (the data module repeats each batch for the recipe's
    number of steps), so a checkpoint resumes an inversion where it stopped. Finished
    images are kept in the ``produced`` buffer and returned by
    ``validation_step``/``test_step`` as ``{"images", "labels"}`` for the metric
    callbacks. Under DDP use ``strategy: ddp_independent``: each process optimises its
    own targets; every checkpoint and the end of training gather every process's
    finished images into ``produced`` (:meth:`gather_produced`), and a checkpoint holds
    every process's run in progress, so a resume needs the same number of processes.

    Args:
        classifier: Target classifier spec (frozen; not saved in checkpoints).
        recipe: ``pii``, ``deepinversion``, ``deepdream`` or ``custom``.
        options: Recipe fields to override, e.g. ``{ensemble: 8, steps_per_stage: 100}``.
        image_size: Side of the produced images.
        channels: Channels of the produced images.
        seed: Seed of the initial noise and the augmentations (``derive_seed(seed, rank)``).
        student: Student classifier spec for Adaptive DeepInversion's competition term
            (``options: {competition: 0.2}``); frozen, not saved.
        steps_per_training_step: Optimisation steps run in one Lightning training step
            (K): the Trainer's fixed per-step cost is paid once per K steps; the images
            are those of K = 1 (see ``BaseTask.group_steps``).
        compile: ``torch.compile`` the classifier (and the student) in place before the
            first step (``compiling.compile_in_place``; shapes may change between stages
            and batches, so ``dynamic`` is left to torch). The images equal the eager
            run's up to float reassociation; compiling costs seconds up front and pays
            on long runs of large models (``benchmarks.class_inversion_speed``).
        **target: ``weights``, ``pretrained``, ``classifier_num_classes``,
            ``input_size`` of the classifier (see :class:`TargetTask`).
    """

    classifier: ImageClassifier  # attached frozen (attach_frozen): not a submodule
    student: ImageClassifier | None
    produced: Tensor  # buffers
    times_produced: Tensor
    own_rows: Tensor  # not saved: the rows this process produced (restored on resume)

    def __init__(
        self,
        classifier: str = "digits:cnn",
        recipe: RecipeName = "pii",
        options: dict[str, Any] | None = None,
        image_size: int = 32,
        channels: int = 1,
        seed: int = 0,
        student: str | None = None,
        steps_per_training_step: int = 1,
        compile: bool = False,
        **target: Any,
    ) -> None:
        super().__init__(classifier, **target)
        self.automatic_optimization = False
        self.inverter: ClassInverter | None = None
        self._pending_state: dict[str, Any] | None = None
        self.group_steps(steps_per_training_step, self._training_steps)

    def configure_models(self) -> None:  # noqa: D102
        hp = self.hparams
        self.recipe = recipe_from(hp.recipe, hp.options)
        classifier = self.frozen_target()
        self.attach_frozen("classifier", classifier)  # not a submodule: never saved
        self._make_buffers(0, hp.image_size)
        student = build_classifier(hp.student).freeze() if hp.student else None
        self.attach_frozen("student", student)

    # --- set-up -----------------------------------------------------------------------
    def _make_buffers(self, num_targets: int, size: int) -> None:
        shape = (num_targets, self.hparams.channels, size, size)
        self.register_buffer("produced", torch.zeros(shape, device=self.device))
        # how many times each target was produced: 1 after a run, summed over ranks
        counts = torch.zeros(num_targets, dtype=torch.int32, device=self.device)
        self.register_buffer("times_produced", counts)
        own = torch.zeros(num_targets, dtype=torch.bool, device=self.device)
        self.register_buffer("own_rows", own, persistent=False)

    def setup(self, stage: str) -> None:
        """Check the pairing, size the buffers, build the inverter."""
        datamodule = getattr(self.trainer, "datamodule", None)
        num_targets = getattr(datamodule, "num_targets", None)
        if num_targets is None:
            raise InversionError(
                "ClassInversion needs a ClassTargetsDataModule (which classes, "
                f"how many images each); got {type(datamodule).__name__}."
            )
        refuse_wrapping_ddp(self.trainer.strategy, "class inversion")
        if len(self.produced) != num_targets:
            self._make_buffers(num_targets, self.hparams.image_size)
        if self.inverter is not None and self.inverter.bn_stats is not None:
            self.inverter.bn_stats.remove()  # the new inverter hooks the classifier again
        self.inverter = ClassInverter(
            self.classifier,
            self.recipe,
            self.hparams.image_size,
            self.hparams.channels,
            seeds.generator(self.hparams.seed, self.global_rank),
            student=self.student,
        )
        if self.hparams.compile:  # traced at the first step, the inverter's hooks too
            compile_in_place([self.classifier, self.student], dynamic=None)
        super().setup(stage)

    @property
    def _inverter(self) -> ClassInverter:
        """The inverter, built in :meth:`setup`."""
        if self.inverter is None:
            raise InversionError("ClassInversion's inverter is built in setup(); call it first.")
        return self.inverter

    def training_schedule(self) -> int:
        """Each batch of targets takes the recipe's whole schedule."""
        return self._inverter.total_steps

    def configure_optimizers(self) -> None:
        """The images' optimisers belong to the inverter (one per batch and stage)."""
        return None

    # --- optimisation -----------------------------------------------------------------
    def on_train_start(self) -> None:  # noqa: D102
        super().on_train_start()
        if self._pending_state is not None:
            self._restore_run(self._pending_state)
            self._pending_state = None

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:  # noqa: D102
        self._log(self._optimise(batch))

    def _training_steps(self, dataloader_iter: Iterator[Any]) -> None:
        """K optimisation steps, one per item of the data (``steps_per_training_step``)."""
        parts = None
        for batch in self.next_batches(dataloader_iter):
            parts = self._optimise(batch) or parts
        self._log(parts)

    def _optimise(self, batch: dict[str, Any]) -> dict[str, Tensor] | None:
        """One optimisation step of the item's targets; its loss parts (None if empty)."""
        index, labels, step = batch["index"], batch["label"], batch["step"]
        # every item is one step, empty or not: global_step is the items done (resuming)
        self._count_optimizer_step()
        if len(index) == 0:  # a rank with fewer targets than batches
            return None
        inverter = self._inverter
        if step == 0:
            inverter.start(labels)
        parts = inverter.step()
        if inverter.finished:
            self.produced[index] = inverter.result().to(self.produced.dtype)
            self.times_produced[index] += 1
            self.own_rows[index] = True
        return parts

    def _log(self, parts: dict[str, Tensor] | None) -> None:
        """Log the last step's loss parts where someone reads them (``logs_this_step``)."""
        if parts is None or not self.logs_this_step():
            return
        self.log_dict(
            {f"train/{k}": v for k, v in parts.items()},
            on_step=True,
            on_epoch=False,
            prog_bar=False,
            batch_size=1,  # per-step values (a grouped step has no batch to size)
        )
        self.log("loss", parts["loss"], prog_bar=True, logger=False, batch_size=1)
        optimizer = self._inverter.optimizer
        if optimizer is not None:  # the recipe's schedule (the inverter's own Adam)
            lr = optimizer.param_groups[0]["lr"]
            self.log("train/lr", lr, on_step=True, on_epoch=False, batch_size=1)

    def _count_optimizer_step(self) -> None:
        """Advance ``trainer.global_step`` (max_steps, logging, checkpoint intervals).

        Lightning counts steps of the optimisers it manages; the inverter's Adam is
        re-created per batch and stage, so its steps are counted here.
        """
        count_manual_optimizer_step(self.trainer)

    def on_train_end(self) -> None:
        """Give every rank every target's image (each row was filled by one rank)."""
        self.gather_produced()

    # --- DDP: every process's images and runs -------------------------------------------
    def _world_size(self) -> int:
        """Processes of the run in the process group (1 outside DDP or after it)."""
        trainer = self._trainer
        if trainer is None or not (dist.is_available() and dist.is_initialized()):
            return 1
        return int(trainer.world_size)

    def gather_produced(self) -> None:
        """Give every process every finished image and count (a no-op in one process).

        Each row is filled by the one process that inverts its target (``own_rows``), so
        every process zeroes the rows it does not own and the buffers are summed over the
        processes: idempotent (a row is never summed twice), so it runs at every
        checkpoint and at the end of training. A collective: every process calls it.
        """
        if self._world_size() == 1:
            return
        own = self.own_rows
        produced = torch.where(own.view(-1, 1, 1, 1), self.produced, 0)
        counts = torch.where(own, self.times_produced, 0)
        dist.all_reduce(produced)
        dist.all_reduce(counts)
        self.produced.copy_(produced)
        self.times_produced.copy_(counts)

    def _all_runs(self, run: dict[str, Any]) -> dict[str, Any]:
        """Every process's run in progress and own rows, by rank (a collective)."""
        own = {"run": run, "own_rows": self.own_rows.nonzero().flatten().cpu()}
        ranks: list[Any] = [None] * self._world_size()
        dist.all_gather_object(ranks, own)
        return {"world_size": len(ranks), "ranks": ranks}

    def _restore_run(self, saved: dict[str, Any]) -> None:
        """Restore this process's run in progress (and own rows) from a checkpoint's record.

        Raises:
            InversionError: If the checkpoint was saved by another number of processes.
        """
        world = self._world_size()
        saved_world = int(saved["world_size"]) if "ranks" in saved else 1  # one process's
        if saved_world != world:
            raise InversionError(
                f"the checkpoint holds the class inversion in progress of {saved_world} "
                f"process{'es' if saved_world > 1 else ''} (each inverts its own targets), "
                f"but this run has {world}: resume it with {saved_world} (--trainer.devices "
                "and --trainer.num_nodes as when it was saved). Its finished images can be "
                "scored with any number (test or validate with --ckpt_path)."
            )
        if "ranks" not in saved:  # a single-process checkpoint: the inverter's state
            self._inverter.load_state_dict(saved, self.device)
            return
        own = saved["ranks"][self.global_rank]
        self._inverter.load_state_dict(own["run"], self.device)
        self.own_rows.zero_()
        self.own_rows[own["own_rows"].to(self.device)] = True

    # --- outputs for the callbacks ------------------------------------------------------
    def _produce(self, batch: dict[str, Any]) -> dict[str, Tensor] | None:
        index = batch["index"]
        if len(index) == 0:
            return None
        return {"images": self.produced[index], "labels": batch["label"]}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict | None:  # noqa: D102
        return self._produce(batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict | None:  # noqa: D102
        return self._produce(batch)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict | None:  # noqa: D102
        return self._produce(batch)

    # --- checkpoints --------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save the run in progress (images, Adam state, step, RNG) beside the buffers.

        Under DDP (every process dumps the checkpoint; rank 0 writes it) the buffers hold
        every process's finished images, and ``class_inversion`` every process's run in
        progress and own rows, by rank, with the number of processes.
        """
        super().on_save_checkpoint(checkpoint)
        distributed = self._world_size() > 1
        if distributed:
            self.gather_produced()
            state = checkpoint.setdefault("state_dict", {})
            state["produced"], state["times_produced"] = self.produced, self.times_produced
        if self.inverter is not None:
            run = self.inverter.state_dict()
            checkpoint["class_inversion"] = self._all_runs(run) if distributed else run

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the run in progress for on_train_start (which checks the process count)."""
        super().on_load_checkpoint(checkpoint)
        self._pending_state = checkpoint.get("class_inversion") or None

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        """Size the buffers like the saved ones (their target count is the data's)."""
        produced = state_dict.get(prefix + "produced")
        if produced is not None and produced.shape != self.produced.shape:
            self._make_buffers(produced.shape[0], produced.shape[-1])
        super()._load_from_state_dict(state_dict, prefix, *args)
