"""The one timing harness of the speed benchmarks (each compares loops against a bare one).

A machine shared with other work makes one timing of each loop, one after the other,
measure the machine as much as the loops. So every ``*_speed.py`` times its loops with
:func:`interleave`: an untimed warm-up of each loop, then ``repeats`` rounds in which
every loop runs once (A B C, then B C A, ...: the order rotates so no loop always
follows the same one), and it reports, for each loop, the median over rounds of its
time divided by the bare loop's time *in the same round*, with the spread (min-max)
of those ratios. Threads are pinned (:func:`pin_threads`) and stated in the output.

- :func:`sync` waits for asynchronous device work before a clock is read;
- :func:`time_steps` times a step function (bare loops and engines);
- :class:`StepTimer` times consecutive training steps of a Lightning Trainer (modules);
- :func:`fit_seconds_per_step` fits a module under a bare Trainer with a StepTimer;
- :func:`interleave` runs the rounds; :class:`Timings` holds and formats the result;
- :class:`SpeedScript` is the one ``main`` of every ``*_speed.py``: shared options
  (steps, repeats, threads, device; for the step-wise modules the K values of
  ``steps_per_training_step`` and those timed with ``compile``), the pinned threads, the
  header line and the tables; a script defines its options, its loops and its title;
- :func:`module_loops` names the rows of a step-wise module (one per K, eager and
  compiled; :func:`module_row`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch

Loop = Callable[[int], float]  # steps -> seconds per step
ModuleLoop = Callable[[int, bool], Loop]  # (K, compile) -> a step-wise module's loop
KS = (1, 4, 16)  # steps_per_training_step K of the step-wise modules' eager rows
COMPILED_KS = (1, 16)  # ... and of their rows with compile=True


def sync(device: str | torch.device) -> None:
    """Wait for the device (timings of asynchronous CUDA work)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def pin_threads(threads: int) -> int:
    """Use ``threads`` intra-op threads (and one inter-op thread where still allowed)."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only allowed before any parallel work ran
        pass
    return torch.get_num_threads()


def add_timing_args(parser: argparse.ArgumentParser, steps: int | None, repeats: int = 5) -> None:
    """The options every speed benchmark shares: steps (unless None), repeats, threads, device."""
    if steps is not None:
        parser.add_argument("--steps", type=int, default=steps, help="timed steps per round")
    parser.add_argument("--repeats", type=int, default=repeats, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def time_steps(step: Callable[[], object], steps: int, device: str, warmup: int = 2) -> float:
    """Seconds per call of ``step`` over ``steps`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - start) / steps


def step_loop(step: Callable[[], object], device: str) -> Loop:
    """A :data:`Loop` timing ``step`` (state carries over between rounds)."""
    return lambda steps: time_steps(step, steps, device)


class StepTimer(pl.Callback):
    """Wall time between consecutive training steps, after a warm-up.

    Steps are timed between consecutive ``on_train_batch_end`` calls, so data loading,
    logging and every hook of the Trainer are included. The time is divided by the
    optimisation steps done in between (``trainer.global_step``), so a module running
    several optimisation steps per training step is timed per optimisation step too.
    """

    def __init__(self, warmup: int = 3) -> None:
        self.warmup = warmup
        self.batches = 0
        self.seconds = 0.0
        self.steps = 0
        self.last: tuple[float, int] | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        sync(pl_module.device)
        now, step = time.perf_counter(), trainer.global_step
        self.batches += 1
        if self.last is not None and self.batches > self.warmup:
            self.seconds += now - self.last[0]
            self.steps += step - self.last[1]
        self.last = (now, step)

    @property
    def seconds_per_step(self) -> float:
        """Seconds per timed optimisation step."""
        if not self.steps:
            raise RuntimeError("StepTimer saw no step after its warm-up; run more steps.")
        return self.seconds / self.steps


def fit_seconds_per_step(
    module: pl.LightningModule,
    device: str,
    timer: StepTimer | None = None,
    *,
    datamodule: pl.LightningDataModule | None = None,
    train_dataloaders: object = None,
    **trainer_options: Any,
) -> float:
    """Seconds per optimisation step of ``module`` under a Trainer that does nothing else.

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


@dataclass
class Timings:
    """Seconds per step of each loop in each round; the first loop is the bare one."""

    seconds: dict[str, list[float]]

    @property
    def bare(self) -> str:
        """The name of the reference loop."""
        return next(iter(self.seconds))

    def ratios(self, name: str) -> list[float]:
        """The loop's time over the bare loop's, round by round."""
        return [t / b for t, b in zip(self.seconds[name], self.seconds[self.bare], strict=True)]

    def ratio(self, name: str) -> tuple[float, float, float]:
        """Median, min and max of :meth:`ratios`."""
        values = self.ratios(name)
        return statistics.median(values), min(values), max(values)

    def cell(self, name: str) -> str:
        """``median (min-max)`` of the ratio to the bare loop."""
        median, low, high = self.ratio(name)
        return f"{median:.2f} ({low:.2f}-{high:.2f})"

    def bare_ms(self) -> float:
        """Median milliseconds per step of the bare loop."""
        return 1000 * statistics.median(self.seconds[self.bare])

    def table(self) -> str:
        """A Markdown table: median ms/step and the ratio to the bare loop (median, min-max)."""
        lines = [
            "| loop | ms / step (median) | ratio to bare: median (min-max) |",
            "|---|---:|---:|",
        ]
        for name, values in self.seconds.items():
            ratio = "1" if name == self.bare else self.cell(name)
            lines.append(f"| {name} | {1000 * statistics.median(values):.1f} | {ratio} |")
        return "\n".join(lines)


def interleave(loops: dict[str, Loop], steps: int, repeats: int, warmup: int = 5) -> Timings:
    """Time every loop in ``repeats`` interleaved rounds after one untimed warm-up each.

    Args:
        loops: Name -> a function that runs ``steps`` steps and returns seconds per step;
            the first is the bare loop the others are divided by.
        steps: Timed steps per loop and round.
        repeats: Rounds; the order of the loops rotates from round to round.
        warmup: Steps each loop runs once, untimed, before the first round.
    """
    names = list(loops)
    for name in names:
        loops[name](warmup)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            seconds[name].append(loops[name](steps))
    return Timings(seconds)


def header(what: str, device: str, threads: int, steps: int, repeats: int) -> str:
    """The line every benchmark prints above its table."""
    return (
        f"{what}; device {device}, torch {torch.__version__}, {threads} threads, "
        f"{repeats} interleaved rounds of {steps} steps (ratio: median and min-max over rounds)"
    )


def module_row(prefix: str, k: int, compiled: bool = False) -> str:
    """The row name of a step-wise module at K (``steps_per_training_step``), maybe compiled."""
    return f"{prefix}, K={k}" + (", compiled" if compiled else "")


def module_loops(
    prefix: str,
    loop: ModuleLoop,
    ks: Sequence[int] = KS,
    compiled_ks: Sequence[int] = COMPILED_KS,
) -> dict[str, Loop]:
    """A step-wise module's loops: ``loop(k, compile)`` for every K, eager then compiled."""
    loops = {module_row(prefix, k): loop(k, False) for k in ks}
    loops.update({module_row(prefix, k, True): loop(k, True) for k in compiled_ks})
    return loops


Tables = dict[str, Timings]  # title ("" for a script's only table) -> timings


@dataclass(frozen=True)
class SpeedScript:
    """One ``*_speed.py`` benchmark: the one ``main`` they share, around their own parts.

    Args:
        doc: The script's docstring (its first line describes the command).
        arguments: Adds the script's own options to the parser.
        measure: Times the loops for the parsed options (threads already pinned): one
            :class:`Timings`, or several by title.
        what: The benchmark in words, for the header line (model, batch, ...).
        steps: The default of ``--steps`` (timed steps per round), or, for a script
            whose own options set them, a function of the parsed options (no
            ``--steps`` option).
        step_wise: Add ``--steps-per-training-step`` (the K values of the module's
            eager rows, default :data:`KS`) and ``--compiled`` (the K values timed with
            ``compile=True``, default :data:`COMPILED_KS`; none with a bare
            ``--compiled``).
        repeats: The default of ``--repeats``.
    """

    doc: str
    arguments: Callable[[argparse.ArgumentParser], None]
    measure: Callable[[argparse.Namespace], Timings | Tables]
    what: Callable[[argparse.Namespace], str]
    steps: int | Callable[[argparse.Namespace], int]
    step_wise: bool = False
    repeats: int = 5

    def parser(self) -> argparse.ArgumentParser:
        """The script's options and the shared ones."""
        parser = argparse.ArgumentParser(description=self.doc.strip().splitlines()[0])
        self.arguments(parser)
        fixed = self.steps if isinstance(self.steps, int) else None
        add_timing_args(parser, steps=fixed, repeats=self.repeats)
        if self.step_wise:
            parser.add_argument(
                "--steps-per-training-step",
                type=int,
                nargs="+",
                default=list(KS),
                metavar="K",
                help="K values of the module's rows (optimisation steps per training step)",
            )
            parser.add_argument(
                "--compiled",
                type=int,
                nargs="*",
                default=list(COMPILED_KS),
                metavar="K",
                help="K values also timed with compile=True (none: a bare --compiled)",
            )
        return parser

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """Parse ``argv`` (default: the command line); K values must be at least 1."""
        parser = self.parser()
        args = parser.parse_args(argv)
        ks = [*getattr(args, "steps_per_training_step", []), *getattr(args, "compiled", [])]
        if any(k < 1 for k in ks):
            parser.error(f"K (steps per training step) must be at least 1; got {min(ks)}")
        return args

    def timed_steps(self, args: argparse.Namespace) -> int:
        """Timed steps per loop and round for the parsed options."""
        return args.steps if isinstance(self.steps, int) else self.steps(args)

    def tables(self, args: argparse.Namespace) -> Tables:
        """Time the loops for the parsed options: the tables by title ("": the only one)."""
        result = self.measure(args)
        return result if isinstance(result, dict) else {"": result}

    def main(self, argv: Sequence[str] | None = None) -> Tables:
        """Parse, pin the threads, time the loops, print the header line and the tables."""
        args = self.parse(argv)
        threads = pin_threads(args.threads)
        tables = self.tables(args)
        steps = self.timed_steps(args)
        print(header(self.what(args), args.device, threads, steps, args.repeats))
        for title, timings in tables.items():
            if title:
                print(f"\n{title}:\n")
            print(timings.table())
        return tables
