"""Time per optimisation step: the ClassInversion module against a bare PyTorch loop.

All loops do the same maths on the same model and batch (PII: circular jitter, ensemble
replication, ColorShift, cross-entropy, Adam, clamp; one stage, so no zoom transitions):

- bare: a hand-written loop of torch calls,
- engine: ``ClassInverter.step()`` (inversion/, plain PyTorch),
- module: ``ClassInversion`` under a Lightning Trainer (steps timed between
  consecutive ``on_train_batch_end`` calls, so data loading and hooks are included),
  once per ``--steps-per-training-step`` K (K optimisation steps per Lightning step) and
  once per ``--compiled`` K with ``compile=True`` (the classifier compiled).

Timed by ``benchmarks.timing`` (interleaved rounds, median and min-max; its
``SpeedScript`` is the command line).

    python -m benchmarks.class_inversion_speed --target digits:cnn --per-class 4 --ensemble 4
    python -m benchmarks.class_inversion_speed --steps-per-training-step 1 4 16 --compiled 1
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from benchmarks.timing import (
    Loop,
    ModuleLoop,
    SpeedScript,
    StepTimer,
    Timings,
    fit_seconds_per_step,
    interleave,
    module_loops,
    step_loop,
)
from inversion import build_classifier
from inversion.class_inversion import ClassInverter, recipe_from
from model_inversion.datamodules import ClassTargetsDataModule
from model_inversion.lightning_modules import ClassInversion


def bare_loop(model, labels, ensemble: int, size: int, device: str) -> Loop:
    """The same maths written directly in torch."""
    images = torch.rand(len(labels), 1, size, size, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([images], lr=0.01, betas=(0.5, 0.99))
    targets = labels.repeat(ensemble)
    shift = max(1, round(size * 32 / 224))

    def step() -> None:
        dx, dy = torch.randint(-shift, shift + 1, (2,)).tolist()
        view = torch.roll(images, shifts=(dx, dy), dims=(2, 3)).repeat(ensemble, 1, 1, 1)
        n, c = view.shape[:2]
        mu = (torch.rand(n, c, 1, 1) * 2 - 1).to(device)
        sigma = torch.exp(torch.rand(n, c, 1, 1) * 2 - 1).to(device)
        loss = F.cross_entropy(model(view * sigma + mu), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            images.clamp_(0, 1)

    return step_loop(step, device)


def engine_loop(model, labels, options: dict, size: int, device: str) -> Loop:
    """``ClassInverter.step()`` (a schedule long enough for every round)."""
    recipe = recipe_from("pii", {**options, "steps_per_stage": 10**9})
    inverter = ClassInverter(model, recipe, size, 1, torch.Generator().manual_seed(0))
    inverter.start(labels)
    return step_loop(inverter.step, device)


MODULE = "module (ClassInversion + Trainer)"  # the prefix of the module's rows


def module_loop(target: str, options: dict, per_class: int, device: str) -> ModuleLoop:
    """The LightningModule, a fresh fit per round, at K (and compiled or not)."""

    def at(k: int, compile: bool) -> Loop:
        def run(steps: int) -> float:
            timer = StepTimer()
            total = steps + (timer.warmup + 2) * k
            module = ClassInversion(
                classifier=target,
                recipe="pii",
                options={**options, "steps_per_stage": total},
                image_size=32,
                channels=1,
                steps_per_training_step=k,
                compile=compile,
            )
            data = ClassTargetsDataModule(
                num_classes=10, images_per_class=per_class, batch_size=10_000
            )
            return fit_seconds_per_step(module, device, timer, datamodule=data)

        return run

    return at


def arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--target", default="digits:cnn")
    parser.add_argument("--per-class", type=int, default=4, help="images per class (10 classes)")
    parser.add_argument("--ensemble", type=int, default=4)


def measure(args: argparse.Namespace) -> Timings:
    """Interleaved timings of the bare loop, the engine and the module's rows."""
    device = args.device
    model = build_classifier(args.target).freeze().to(device)
    labels = torch.arange(10, device=device).repeat_interleave(args.per_class)
    options = {"zoom_stages": 1, "ensemble": args.ensemble}
    torch.manual_seed(0)
    loops = {
        "bare PyTorch": bare_loop(model, labels, args.ensemble, 32, device),
        "engine (ClassInverter.step)": engine_loop(model, labels, options, 32, device),
    }
    at = module_loop(args.target, options, args.per_class, device)
    loops.update(module_loops(MODULE, at, args.steps_per_training_step, args.compiled))
    return interleave(loops, args.steps, args.repeats)


def what(args: argparse.Namespace) -> str:
    """The header's description of the benchmark."""
    return f"{args.target}, {10 * args.per_class} images x ensemble {args.ensemble}"


SCRIPT = SpeedScript(__doc__ or "", arguments, measure, what, steps=40, step_wise=True)

if __name__ == "__main__":
    SCRIPT.main()
