"""Time per optimisation step: the ClassInversion module against a bare PyTorch loop.

All loops do the same maths on the same model and batch (PII: circular jitter, ensemble
replication, ColorShift, cross-entropy, Adam, clamp; one stage, so no zoom transitions):

- bare: a hand-written loop of torch calls,
- engine: ``ClassInverter.step()`` (inversion/, plain PyTorch),
- module: ``ClassInversion`` under a Lightning Trainer (steps timed between
  consecutive ``on_train_batch_end`` calls, so data loading and hooks are included),
  once per ``--steps-per-training-step`` K (K optimisation steps per Lightning step).

Timed by ``benchmarks.timing.interleave`` (interleaved rounds, median and min-max).

    python -m benchmarks.class_inversion_speed --target digits:cnn --per-class 4 --ensemble 4
    python -m benchmarks.class_inversion_speed --steps-per-training-step 1 4 16
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from benchmarks.timing import (
    Loop,
    StepTimer,
    Timings,
    add_timing_args,
    fit_seconds_per_step,
    header,
    interleave,
    pin_threads,
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


def module_loop(target: str, options: dict, per_class: int, device: str, k: int) -> Loop:
    """The LightningModule, a fresh fit per round, K optimisation steps per training step."""

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
        )
        data = ClassTargetsDataModule(num_classes=10, images_per_class=per_class, batch_size=10_000)
        return fit_seconds_per_step(module, device, timer, datamodule=data)

    return run


def measure(
    target: str = "digits:cnn",
    per_class: int = 4,
    ensemble: int = 4,
    steps: int = 40,
    repeats: int = 5,
    device: str = "cpu",
    ks: tuple[int, ...] = (1,),
) -> Timings:
    """Interleaved timings of the bare loop, the engine and the module (one row per K)."""
    model = build_classifier(target).freeze().to(device)
    labels = torch.arange(10, device=device).repeat_interleave(per_class)
    options = {"zoom_stages": 1, "ensemble": ensemble}
    torch.manual_seed(0)
    loops = {
        "bare PyTorch": bare_loop(model, labels, ensemble, 32, device),
        "engine (ClassInverter.step)": engine_loop(model, labels, options, 32, device),
    }
    for k in ks:
        name = f"module (ClassInversion + Trainer), K={k}"
        loops[name] = module_loop(target, options, per_class, device, k)
    return interleave(loops, steps, repeats)


def main() -> None:
    """Time the loops and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="digits:cnn")
    parser.add_argument("--per-class", type=int, default=4, help="images per class (10 classes)")
    parser.add_argument("--ensemble", type=int, default=4)
    parser.add_argument("--steps-per-training-step", type=int, nargs="+", default=[1])
    add_timing_args(parser, steps=40)
    args = parser.parse_args()
    threads = pin_threads(args.threads)
    timings = measure(
        args.target,
        args.per_class,
        args.ensemble,
        args.steps,
        args.repeats,
        args.device,
        tuple(args.steps_per_training_step),
    )
    what = f"{args.target}, {10 * args.per_class} images x ensemble {args.ensemble}"
    print(header(what, args.device, threads, args.steps, args.repeats))
    print(timings.table())


if __name__ == "__main__":
    main()
