"""The base of every LightningModule here: the plumbing every family shares.

Init args saved, then three build hooks (torchgeo's ``BaseTask``); frozen models that are
never saved; "the whole schedule is one epoch"; epoch-end compute/log/reset of metrics;
the random number generators' states in checkpoints.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any, ClassVar, Protocol, cast

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.data import AttributeDict
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from inversion.errors import InversionError
from inversion.models import ImageClassifier, build_classifier
from model_inversion.lightning_modules.lightning_internals import (
    disable_hp_metric_placeholder,
    epoch_max_steps,
    fit_loader,
    logs_due,
    restore_loader_position,
    scale_epoch_batches,
    set_epoch_max_steps,
)


def log_hparams_metrics(
    trainer: pl.Trainer, hparams: Mapping[str, Any], metrics: Mapping[str, float]
) -> None:
    """Record ``metrics`` (``hp/...`` names) as hparams metrics with every logger.

    TensorBoard gets them in its hparams plugin beside ``hparams``; other loggers (CSV,
    ...) as plain metrics at the current step. Only the global-zero process writes, and
    a name already recorded at this step (by a callback, then by the module) is skipped.
    """
    if not trainer.is_global_zero:
        return
    recorded = _RECORDED_HPARAMS_METRICS.setdefault(trainer, set())
    fresh = {k: v for k, v in metrics.items() if (k, trainer.global_step) not in recorded}
    if not fresh:
        return
    recorded.update((k, trainer.global_step) for k in fresh)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):  # the only one with hparams metrics
            logger.log_hyperparams(dict(hparams), fresh)
        else:
            logger.log_metrics(fresh, step=trainer.global_step)


_RECORDED_HPARAMS_METRICS: weakref.WeakKeyDictionary[pl.Trainer, set[tuple[str, int]]] = (
    weakref.WeakKeyDictionary()
)


class EpochMetric(Protocol):
    """What :meth:`BaseTask.log_and_reset` needs of a metric (torchmetrics' or a module's)."""

    def compute(self) -> Any:
        """The value (or a dict of values) accumulated since the last reset."""

    def reset(self) -> None:
        """Forget what was accumulated."""


class BaseTask(pl.LightningModule):
    """A LightningModule built in three hooks, after its init args are saved.

    Subclasses take plain, serialisable init args (spec strings, layer names, numbers),
    so YAML configs and ``load_from_checkpoint`` just work, and implement
    :meth:`configure_models`; :meth:`configure_losses` and :meth:`configure_metrics`
    are optional. The maths lives in ``inversion/``; a task only wires it.

    Frozen models (targets, verifiers, teachers) are attached with
    :meth:`attach_frozen`: they move with the module (``.to(device)``, dtype casts) but
    are not submodules, so they are never saved in checkpoints or wrapped by DDP; they
    are rebuilt from their specs.

    A module whose training is a fixed schedule of optimisation steps (class inversion,
    layer-wise inversion, GAN inversion) returns its length from
    :meth:`training_schedule`; the whole schedule is then one epoch, and the DataModule
    is told its length (``set_schedule(steps)``) before the loaders are built (plain
    loaders are cut at ``steps``).
    Subclasses that override :meth:`setup` call ``super().setup(stage)`` last.

    Checkpoints carry the random number generators' states (CPU and CUDA), so a run
    resumed from a checkpoint draws the same shuffles, augmentations and random starts
    as the uninterrupted run (under DDP, every process resumes with the saving process's
    states). Subclasses that override the checkpoint hooks or ``on_train_start`` call
    ``super()``.

    A non-finite training loss stops the fit with an :class:`InversionError` that names
    the step and the likely causes (see :meth:`on_train_batch_end`); so do NaN or
    infinite images returned by a validation or test step, and a NaN validation or test
    loss (other NaN metrics warn). Subclasses that override ``on_train_batch_start``,
    ``on_train_batch_end``, ``on_{validation,test}_batch_end``, ``on_{validation,test}_end``
    or ``log`` call ``super()``.

    At the end of every validation (not the sanity check) and test, the logged metrics
    that :attr:`hparams_metrics` names are recorded as hparams metrics ``hp/<name>``
    (:func:`log_hparams_metrics`); TensorBoard's ``hp_metric = -1`` placeholder is off.
    A module whose optimisers follow a schedule (:attr:`lr_schedule`) gets a
    ``LearningRateMonitor`` whenever the trainer has a logger.

    Step-wise modules may run several optimisation steps in one Lightning training step
    (:meth:`group_steps`), so that the Trainer's fixed per-step cost is paid once per K
    steps; they log only on the steps whose values reach someone (:meth:`logs_this_step`).

    Args:
        ignore: Init args not to save as hyperparameters.
    """

    _frozen_models: dict[str, nn.Module]  # set with object.__setattr__: not a submodule
    _logged_losses: dict[str, Any]  # this batch's logged training losses (non-finite check)
    _batches_checked: int  # training batches seen in this fit (non-finite check)

    hparams_metrics: ClassVar[tuple[str, ...]] = ("val/*", "test/*")
    """Logged metric names (``fnmatch`` patterns) recorded as hparams metrics."""
    lr_schedule: ClassVar[bool] = False
    """Whether ``configure_optimizers`` returns a learning-rate schedule (then logged)."""

    def __init__(self, ignore: list[str] | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "_frozen_models", {})
        self._logged_losses = {}
        self._batches_checked = 0
        self.save_hyperparameters(ignore=["ignore", *(ignore or [])])
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    def configure_models(self) -> None:
        """Build the networks from ``self.hparams``."""
        raise NotImplementedError

    def configure_losses(self) -> None:
        """Build the loss functions (optional)."""

    def configure_metrics(self) -> None:
        """Build the torchmetrics metrics (optional)."""

    @property
    def hparams(self) -> AttributeDict:  # type: ignore[override]
        """The saved init args, read as attributes (``self.hparams.seed``)."""
        return cast(AttributeDict, super().hparams)

    def training_schedule(self) -> int | None:
        """Optimisation steps of the whole schedule, or None to train by epochs.

        For per-sample work (one schedule per batch of targets) it is the steps per batch.
        """
        return None

    def label_classes(self) -> tuple[str, int] | None:
        """The classifier that reads the data's labels: its name and number of classes.

        The frozen target (``classifier``) of a target task by default; None when no
        classifier reads labels (nothing to check).
        """
        model = self._frozen_models.get("classifier")
        classes = getattr(model, "num_classes", None)
        return None if classes is None else (str(getattr(model, "name", "classifier")), classes)

    def check_data_classes(self) -> None:
        """Refuse data whose labels name more classes than the classifier has, before a run.

        The DataModule's ``num_classes`` (the largest label + 1: digits and CIFAR 10, an
        image folder's classes, the class-inversion targets' ``num_classes``) must not
        exceed :meth:`label_classes`; otherwise the run would fail mid-way on an
        out-of-range label (or silently score nonsense).

        Raises:
            InversionError: Naming both counts and what to change.
        """
        datamodule = getattr(self.trainer, "datamodule", None)
        needed = getattr(datamodule, "num_classes", None)
        reader = self.label_classes()
        if not isinstance(needed, int) or reader is None or needed <= reader[1]:
            return
        name, classes = reader
        raise InversionError(
            f"the data ({type(datamodule).__name__}) has labels up to {needed - 1} "
            f"({needed} classes) but the classifier {name} has {classes} classes; use data "
            f"with at most {classes} classes or a classifier with {needed} (num_classes). "
            "Class folders named by numbers are labelled by their number."
        )

    def setup(self, stage: str) -> None:
        """Check the data's classes; fit a module with a schedule as one epoch of it."""
        disable_hp_metric_placeholder(self.trainer.loggers)
        self.check_data_classes()
        steps = self.training_schedule() if stage == "fit" else None
        if steps is None:
            return
        loop = self.trainer.fit_loop
        loop.max_epochs = 1
        set_schedule = getattr(getattr(self.trainer, "datamodule", None), "set_schedule", None)
        if set_schedule is not None:
            set_schedule(steps)
        elif epoch_max_steps(self.trainer) == -1:  # plain loaders: stop where the schedule ends
            set_epoch_max_steps(self.trainer, steps)

    def configure_callbacks(self) -> list[Callback]:
        """A ``LearningRateMonitor`` (per step) for a schedule, when there is a logger."""
        trainer = self.trainer
        monitored = any(isinstance(c, LearningRateMonitor) for c in trainer.callbacks)  # type: ignore[attr-defined]
        if self.lr_schedule and trainer.loggers and not monitored:
            return [LearningRateMonitor(logging_interval="step")]
        return []

    def log_hparams_metrics(self, stage: str) -> None:
        """Record ``stage``'s logged scalars that :attr:`hparams_metrics` names as ``hp/...``."""
        metrics = {
            f"hp/{name}": float(value)
            for name, value in self.trainer.callback_metrics.items()
            if name.startswith(f"{stage}/")
            and torch.as_tensor(value).numel() == 1
            and any(fnmatchcase(name, pattern) for pattern in self.hparams_metrics)
        }
        log_hparams_metrics(self.trainer, self.hparams, metrics)

    def log(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        """Log as Lightning does; training losses are also kept for the non-finite check.

        The names kept are ``loss``, ``train/loss`` and other ``train/...loss`` names (the
        two losses of a GAN); ``log_dict`` logs through this method too.
        """
        if name == "loss" or (name.startswith("train/") and name.endswith("loss")):
            self._logged_losses[name] = value
        super().log(name, value, *args, **kwargs)

    def logs_this_step(self) -> bool:
        """Whether values logged in this training step are read by anyone.

        Lightning hands logged values to the loggers every ``log_every_n_steps`` steps;
        the non-finite check (:meth:`on_train_batch_end`) reads them on the first step
        of a fit and at that cadence. On the other steps a ``self.log`` call only costs
        time (and a progress bar shows the latest logged value), so step-wise modules
        skip it. True outside a Trainer.
        """
        trainer = self._trainer
        if trainer is None:
            return True
        every = max(1, int(getattr(trainer, "log_every_n_steps", 1) or 1))
        upcoming = self._batches_checked + 1
        if upcoming == 1 or upcoming % every == 0 or trainer.should_stop:
            return True
        return logs_due(trainer)

    def group_steps(self, steps: int, grouped_step: Callable[[Iterator[Any]], Any]) -> None:
        """Run ``steps`` optimisation steps in each Lightning training step (1: one).

        With ``steps > 1`` the module optimises manually and ``grouped_step`` (whose one
        argument must be named ``dataloader_iter``) becomes ``training_step``: Lightning
        then hands it the data iterator, and it takes up to ``steps`` batches with
        :meth:`next_batches`, one per optimisation step, so the data, the schedules and
        the random draws are those of ``steps == 1``. ``trainer.global_step`` still
        counts optimisation steps (each ``optimizer.step()``), so ``max_steps``, the
        schedule and resuming are unchanged; what counts training steps (``batch_idx``,
        ``log_every_n_steps``, ``val_check_interval``, the progress bar) counts one per
        ``steps`` optimisation steps, and a checkpoint every N steps lands where N
        optimisation steps end a training step (N a multiple of ``steps``).
        """
        if steps < 1:
            raise InversionError(f"steps_per_training_step must be at least 1; got {steps}.")
        self._steps_per_training_step = steps
        if steps > 1:
            self.automatic_optimization = False
            object.__setattr__(self, "training_step", grouped_step)

    def on_train_epoch_start(self) -> None:
        """As :meth:`on_train_start` (an epoch may reload its loaders)."""
        self._count_training_steps()

    def _count_training_steps(self) -> None:
        """Make Lightning's batch count of an epoch ``ceil(batches / K)`` where K > 1.

        Lightning sizes an epoch by the loader's length; a grouped step consumes K of
        its batches, so the epoch's end (resuming from a checkpoint at an epoch's end
        included), the progress bar and a fractional ``val_check_interval`` are counted
        in training steps. The schedules were sized before (in optimisation steps).
        """
        steps = getattr(self, "_steps_per_training_step", 1)
        loader = fit_loader(self.trainer)
        if steps == 1 or loader is None or loader is getattr(self, "_counted_loader", None):
            return
        object.__setattr__(self, "_counted_loader", loader)  # not a submodule or state
        scale_epoch_batches(self.trainer, steps)

    def next_batches(self, dataloader_iter: Iterator[Any]) -> list[Any]:
        """The next batches of a grouped training step, on the device.

        Fewer at the end of the data (an epoch) or where ``max_steps`` is reached.

        Each goes through the conversions and hooks Lightning applies to a batch it
        hands to ``training_step`` (precision, ``on_before_batch_transfer``, the move to
        the device, ``on_after_batch_transfer``).
        """
        trainer = self.trainer
        count = getattr(self, "_steps_per_training_step", 1)
        if trainer.max_steps >= 0:  # stop where max_steps stops K = 1
            count = min(count, trainer.max_steps - trainer.global_step)
        batches = []
        for _ in range(count):
            try:
                batch, _, _ = next(dataloader_iter)
            except StopIteration:
                break
            batch = trainer.precision_plugin.convert_input(batch)
            batch = self._on_before_batch_transfer(batch, dataloader_idx=0)
            batches.append(trainer.strategy.batch_to_device(batch, dataloader_idx=0))
        return batches

    def on_fit_start(self) -> None:
        """Start counting the training batches of the non-finite check."""
        self._batches_checked = 0

    def on_train_start(self) -> None:
        """Give a resumable training loader its saved position (resuming mid-epoch).

        A ``configure_optimizers`` that reads ``trainer.estimated_stepping_batches``
        makes Lightning build the training loader before it restores a checkpoint's loop
        state, and Lightning then never hands a resumable loader its saved position
        (Lightning issue #20550): a run resumed mid-epoch would start the epoch over.
        It is handed over here, before the first batch is drawn (a no-op otherwise).
        Then an epoch is counted in training steps of K optimisation steps
        (:meth:`group_steps`).
        """
        restore_loader_position(self.trainer)
        self._count_training_steps()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Forget the previous batch's logged losses."""
        self._logged_losses = {}

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Stop the fit, with one clear message, when the training loss is NaN or infinite.

        One mechanism for every module: the loss the training step returned (a tensor, or
        ``{"loss": ...}``) when there is one; otherwise the losses it logged this batch
        (``loss``, ``train/loss``, ``train/...loss``), as class inversion (manual
        optimisation, returns None) and the DCGAN (two logged losses) do. A batch that
        neither returns nor logs a loss (an empty batch) is not checked.

        The check reads the value on the host, a device sync, so it does not run every
        step (the hot loop stays on device): it runs on the first batch of the fit (NaN
        weights or inputs show at once) and then every ``trainer.log_every_n_steps``
        batches, the cadence at which Lightning already brings the logged values to the
        host for the loggers; all the losses are combined into one ``isfinite(...).all()``
        so a check costs one sync. A run that goes non-finite between checks stops at
        the next one; NaN does not turn finite again.
        """
        self._batches_checked += 1
        every = max(1, int(getattr(self.trainer, "log_every_n_steps", 1) or 1))
        if self._batches_checked != 1 and self._batches_checked % every:
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        losses: list[Tensor | float]
        if isinstance(loss, Tensor):
            losses = [loss]
        else:
            losses = [v for v in self._logged_losses.values() if isinstance(v, Tensor | float)]
        if not losses:
            return
        values = torch.stack(
            [torch.as_tensor(v, device=self.device).detach().float().sum() for v in losses]
        )
        if bool(torch.isfinite(values).all()):
            return
        kind = "nan" if bool(torch.isnan(values).any()) else "infinite"
        raise InversionError(
            f"train loss is {kind} at step {self.trainer.global_step}: the learning rate may "
            "be too high, or the weights or inputs contain NaN or infinite values; lower "
            "the learning rate (--model.init_args.lr), check the weights and the data, "
            "and rerun"
        )

    def on_validation_batch_end(
        self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Stop, with one clear message, when the produced images are NaN or infinite."""
        self._check_produced(outputs, "validation", batch_idx)

    def on_test_batch_end(
        self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Stop, with one clear message, when the produced images are NaN or infinite."""
        self._check_produced(outputs, "test", batch_idx)

    def _check_produced(self, outputs: Any, stage: str, batch_idx: int) -> None:
        """Check the ``images`` a validation/test step returned (one sync a batch)."""
        images = outputs.get("images") if isinstance(outputs, Mapping) else None
        if not isinstance(images, Tensor) or bool(torch.isfinite(images).all()):
            return
        kind = "nan" if bool(torch.isnan(images).any()) else "infinite"
        raise InversionError(
            f"the {stage} images are {kind} at step {self.trainer.global_step} (batch "
            f"{batch_idx}): the weights being trained or loaded contain NaN or infinite "
            "values (often a learning rate too high), or the inputs do; lower the learning "
            "rate (--model.init_args.lr), check the checkpoint, weights and data, and rerun"
        )

    def on_validation_end(self) -> None:
        """Stop when a validation loss is NaN; else record the hparams metrics.

        The hparams metrics are not recorded in the sanity check.
        """
        self._check_metrics("validation")
        if not self.trainer.sanity_checking:
            self.log_hparams_metrics("val")

    def on_test_end(self) -> None:
        """Stop when a test loss is NaN; else record the hparams metrics."""
        self._check_metrics("test")
        self.log_hparams_metrics("test")

    def _check_metrics(self, stage: str) -> None:
        """NaN losses among ``trainer.callback_metrics`` stop the run; other NaNs warn.

        A NaN ``...loss`` always means diverged weights or data. Other metrics may be
        NaN by definition (within-class diversity of a class with one sample) and only
        warn; infinite values pass (the PSNR of an exact reconstruction is +inf).
        One sync for all the metrics.
        """
        metrics = {
            name: value
            for name, value in self.trainer.callback_metrics.items()
            if isinstance(value, Tensor) and value.is_floating_point()
        }
        if not metrics:
            return
        device = self.device
        flags = torch.stack([torch.isnan(v.detach()).any().to(device) for v in metrics.values()])
        names = sorted(n for n, bad in zip(metrics, flags.tolist(), strict=True) if bad)
        losses = [name for name in names if name.endswith("loss")]
        if losses:
            raise InversionError(
                f"{stage} loss is nan at step {self.trainer.global_step}: "
                f"{', '.join(losses)}; the weights contain NaN or infinite values (often a "
                "learning rate too high), or the data does; lower the learning rate, check "
                "the checkpoint, weights and data, and rerun"
            )
        if names:
            rank_zero_warn(
                f"{stage} metrics are nan at step {self.trainer.global_step}: "
                f"{', '.join(names)} (nothing to measure, or diverged weights)"
            )

    def log_and_reset(
        self,
        prefix: str,
        metrics: Mapping[str, EpochMetric] | nn.ModuleDict,
        prog_bar: bool = False,
    ) -> None:
        """Compute, log and reset, at the end of an epoch, every metric that was updated.

        A metric that computes one value is logged as ``<prefix>/<name>``; one that
        computes a dict logs each entry as ``<prefix>/<key>`` (name ``""``) or
        ``<prefix>/<key>_<name>``. Metrics sync across processes themselves (torchmetrics).
        An ``nn.ModuleDict`` must hold only metrics (it types its values as plain modules).
        """
        for name, module in metrics.items():
            metric = cast(EpochMetric, module)
            if not getattr(metric, "update_called", True):
                metric.reset()
                continue
            value = metric.compute()
            if isinstance(value, Mapping):
                suffix = f"_{name}" if name else ""
                values = {f"{prefix}/{key}{suffix}": v for key, v in value.items()}
            else:
                values = {f"{prefix}/{name}": value}
            self.log_dict(values, prog_bar=prog_bar, sync_dist=False)
            metric.reset()

    def attach_frozen(self, name: str, model: nn.Module | None) -> None:
        """Make ``self.<name>`` a frozen model that moves with the module but is never saved."""
        object.__setattr__(self, name, model)
        if model is None:
            self._frozen_models.pop(name, None)
        else:
            self._frozen_models[name] = model

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> BaseTask:
        """Move the frozen models along with the module."""
        super()._apply(fn, *args, **kwargs)
        for model in self._frozen_models.values():
            model._apply(fn, *args, **kwargs)
        return self

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save the random number generators' states."""
        checkpoint["rng_states"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the random number generators' states (when the checkpoint has them)."""
        states = checkpoint.get("rng_states") or {}
        if "torch" in states:
            torch.set_rng_state(states["torch"].cpu())
        cuda = states.get("cuda")
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([state.cpu() for state in cuda])


class TargetTask(BaseTask):
    """A task that inverts or attacks one frozen target classifier, named by a spec.

    Subclasses declare their own args and pass the target's on: ``def __init__(self,
    classifier="digits:cnn", ..., **target)`` calling ``super().__init__(classifier,
    **target)``; LightningCLI and ``load_from_checkpoint`` see all of them.

    Args:
        classifier: Target classifier spec (frozen; not saved in checkpoints).
        weights: Local weights file for the classifier.
        pretrained: Download pretrained classifier weights (timm/torchvision).
        classifier_num_classes: Classes of the classifier's head (default: its own).
        input_size: Input size of fixed-size classifiers (ViTs, MLPs).
        ignore: Init args not to save as hyperparameters.
    """

    def __init__(
        self,
        classifier: str = "digits:cnn",
        weights: str | None = None,
        pretrained: bool | None = None,
        classifier_num_classes: int | None = None,
        input_size: int | None = None,
        ignore: list[str] | None = None,
    ) -> None:
        super().__init__(ignore=ignore)

    def frozen_target(self) -> ImageClassifier:
        """The frozen target classifier that the hyperparameters name."""
        hp = self.hparams
        return build_classifier(
            hp.classifier,
            num_classes=hp.classifier_num_classes,
            input_size=hp.input_size,
            pretrained=hp.pretrained,
            weights=hp.weights,
        ).freeze()
