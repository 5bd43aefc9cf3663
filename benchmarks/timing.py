"""Shared timing pieces of the speed benchmarks (each compares against a bare PyTorch loop).

- :func:`sync` waits for asynchronous device work before a clock is read;
- :func:`time_steps` times a step function after a warm-up (the bare loops and engines);
- :class:`StepTimer` times consecutive training steps of a Lightning Trainer (modules);
- :func:`fit_seconds_per_step` fits a module under a bare Trainer with a StepTimer;
- :func:`ratio_table` prints the Markdown table every speed benchmark reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch


def sync(device: str | torch.device) -> None:
    """Wait for the device (timings of asynchronous CUDA work)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(step: Callable[[], object], steps: int, device: str, warmup: int = 10) -> float:
    """Seconds per call of ``step`` over ``steps`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - start) / steps


class StepTimer(pl.Callback):
    """Wall time between consecutive training steps, after a warm-up.

    Steps are timed between consecutive ``on_train_batch_end`` calls, so data loading,
    logging and every hook of the Trainer are included.
    """

    def __init__(self, warmup: int = 10) -> None:
        self.warmup = warmup
        self.times: list[float] = []
        self.last: float | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        sync(pl_module.device)
        now = time.perf_counter()
        if self.last is not None and batch_idx > self.warmup:
            self.times.append(now - self.last)
        self.last = now

    @property
    def seconds_per_step(self) -> float:
        """Mean seconds per timed step."""
        if not self.times:
            raise RuntimeError("StepTimer saw no step after its warm-up; run more steps.")
        return sum(self.times) / len(self.times)


def fit_seconds_per_step(
    module: pl.LightningModule,
    device: str,
    timer: StepTimer | None = None,
    *,
    datamodule: pl.LightningDataModule | None = None,
    train_dataloaders: object = None,
    **trainer_options: Any,
) -> float:
    """Seconds per training step of ``module`` under a Trainer that does nothing else.

    No logger, checkpoints, progress bar, model summary or validation; one device (a GPU
    when ``device`` is ``cuda``). ``trainer_options`` add to these (``max_epochs``,
    ``precision``).
    """
    timer = timer or StepTimer()
    trainer = pl.Trainer(
        accelerator="gpu" if device.startswith("cuda") else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[timer],
        **trainer_options,
    )
    trainer.fit(module, train_dataloaders=train_dataloaders, datamodule=datamodule)
    return timer.seconds_per_step


def ratio_table(rows: list[tuple[str, float]]) -> str:
    """A Markdown table of ms/step and the ratio to the first row (the bare loop)."""
    bare = rows[0][1]
    lines = ["| loop | ms / step | ratio to bare |", "|---|---:|---:|"]
    lines += [f"| {name} | {1000 * sec:.1f} | {sec / bare:.3f} |" for name, sec in rows]
    return "\n".join(lines)
