"""Lightning internals this project relies on, reached in one place only.

Lightning has no public API for these: the step counter of manual optimisation (class
inversion counts the steps of optimisers it creates itself), the step limit of the
training epoch loop (a schedule run as one epoch) and the keyword arguments of a DDP
strategy (whether it looks for unused parameters) and the TensorBoard logger's placeholder
hparams metric (``hp_metric = -1``, switched off). Each is read through
:func:`lightning_attribute`, which fails with one message naming the attribute and the
tested Lightning range when an upgrade moves it; ``tests/test_lightning_internals.py``
checks every one on the installed Lightning, and ``pyproject.toml`` bounds the version.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import lightning
import lightning.pytorch as pl
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy

TESTED_LIGHTNING = ">=2.4,<2.7"  # keep in step with pyproject.toml

MANUAL_STEP_PROGRESS = "fit_loop.epoch_loop.manual_optimization.optim_step_progress"
EPOCH_LOOP = "fit_loop.epoch_loop"
DDP_KWARGS = "_ddp_kwargs"
HP_METRIC_PLACEHOLDER = "_default_hp_metric"


def lightning_attribute(obj: Any, path: str) -> Any:
    """``obj.<path>`` (dotted), or a RuntimeError naming what moved in this Lightning.

    Raises:
        RuntimeError: If an attribute on the path is missing.
    """
    current = obj
    for part in path.split("."):
        try:
            current = getattr(current, part)
        except AttributeError:
            raise RuntimeError(
                f"Lightning {lightning.__version__} has no {type(obj).__name__}.{path} "
                f"(missing: {part!r}); this project relies on it and is tested with "
                f"lightning{TESTED_LIGHTNING}: install a version in that range."
            ) from None
    return current


def count_manual_optimizer_step(trainer: pl.Trainer) -> None:
    """Advance ``trainer.global_step`` by one step of an optimiser Lightning does not manage."""
    progress = lightning_attribute(trainer, MANUAL_STEP_PROGRESS)
    progress.increment_ready()
    progress.increment_completed()


def epoch_max_steps(trainer: pl.Trainer) -> int:
    """The step limit of the training epoch loop (-1: none), ``max_steps`` as the loop has it."""
    return int(lightning_attribute(trainer, f"{EPOCH_LOOP}.max_steps"))


def set_epoch_max_steps(trainer: pl.Trainer, steps: int) -> None:
    """Stop the training epoch loop after ``steps`` steps."""
    loop = lightning_attribute(trainer, EPOCH_LOOP)
    lightning_attribute(loop, "max_steps")  # fails loudly if the limit moved
    loop.max_steps = steps


def ddp_kwargs(strategy: DDPStrategy) -> dict[str, Any]:
    """The keyword arguments a DDP strategy passes to DistributedDataParallel."""
    return dict(lightning_attribute(strategy, DDP_KWARGS))


def disable_hp_metric_placeholder(loggers: Iterable[Logger]) -> None:
    """Stop TensorBoard loggers from recording ``hp_metric = -1`` with the hyperparameters.

    Lightning logs the hyperparameters at the start of every run; a
    :class:`~lightning.pytorch.loggers.TensorBoardLogger` built with
    ``default_hp_metric=True`` (its default) adds that placeholder metric.
    """
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            lightning_attribute(logger, HP_METRIC_PLACEHOLDER)  # fails loudly if it moved
            setattr(logger, HP_METRIC_PLACEHOLDER, False)


LOGS_DUE = "_logger_connector.should_update_logs"
FIT_LOADER = "fit_loop._combined_loader"
FIT_BATCHES = "fit_loop.max_batches"


def logs_due(trainer: pl.Trainer) -> bool:
    """Whether Lightning hands this training step's logged values to the loggers."""
    return bool(lightning_attribute(trainer, LOGS_DUE))


def fit_loader(trainer: pl.Trainer) -> Any:
    """The training loop's current (combined) loader, or None before it is set up."""
    return lightning_attribute(trainer, FIT_LOADER)  # None until the loop sets it up


def scale_epoch_batches(trainer: pl.Trainer, steps: int) -> None:
    """Count an epoch in groups of ``steps`` batches (its length and validation cadence)."""
    loop = trainer.fit_loop
    batches = lightning_attribute(trainer, FIT_BATCHES)
    if batches == float("inf"):
        return
    loop.max_batches = math.ceil(batches / steps)
    interval = trainer.val_check_interval
    if isinstance(interval, float) and trainer.val_check_batch not in (None, float("inf")):
        trainer.val_check_batch = max(1, int(loop.max_batches * interval))


LOADER_STATES = "fit_loop._load_combined_loader_states"


def restore_loader_position(trainer: pl.Trainer) -> None:
    """Hand the training loader the position a checkpoint saved (Lightning issue #20550)."""
    lightning_attribute(trainer, LOADER_STATES)()
