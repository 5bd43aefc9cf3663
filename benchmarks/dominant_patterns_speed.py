"""Time per pattern-optimisation step: the DominantPatterns module against a bare PyTorch loop.

All three do the same maths on the same model and proxy batch (the dominant-pattern
objective 1 - cos(f(p), f(x + p)) on the logits, one forward pass of the pattern and the
batch together, Adam, projection into the L-inf ball):

- bare: a hand-written loop of torch calls,
- engine: ``UniversalPattern`` + ``PatternObjective`` + Adam (inversion/, plain PyTorch),
- module: ``DominantPatterns`` under a Lightning Trainer (steps timed between consecutive
  ``on_train_batch_end`` calls, so data loading and hooks are included), once per
  ``--steps-per-training-step`` K.

Timed by ``benchmarks.timing.interleave`` (interleaved rounds, median and min-max).

    python -m benchmarks.dominant_patterns_speed --target digits:cnn --batch 32
    python -m benchmarks.dominant_patterns_speed --steps-per-training-step 1 4 16
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

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
from inversion.dominant_patterns import (
    PatternObjective,
    UniversalPattern,
    pattern_optimizer,
)
from model_inversion.lightning_modules import DominantPatterns

EPS = 10 / 255


def bare_loop(model, images: torch.Tensor, device: str) -> Loop:
    """The same maths written directly in torch."""
    pattern = torch.zeros(1, *images.shape[1:], device=device, requires_grad=True)
    optimizer = torch.optim.Adam([pattern], lr=1e-2, weight_decay=1e-5)

    def step() -> None:
        with torch.no_grad():
            pattern.clamp_(-EPS, EPS)
        logits = model(torch.cat([pattern, (images + pattern).clamp(0, 1)]))
        loss = (1 - F.cosine_similarity(logits[:1], logits[1:], dim=1)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step_loop(step, device)


def engine_loop(model, images: torch.Tensor, device: str) -> Loop:
    """The inversion/ pieces the module and ``find_pattern`` use."""
    pattern = UniversalPattern(images.shape[1], images.shape[-1], EPS).to(device)
    optimizer = pattern_optimizer(pattern)
    objective = PatternObjective("dominant")

    def step() -> None:
        pattern.project_()
        loss = objective(model, pattern, images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step_loop(step, device)


def module_loop(target: str, images: torch.Tensor, device: str, k: int) -> Loop:
    """The LightningModule (the same batch, repeated), a fresh fit per round."""

    def run(steps: int) -> float:
        timer = StepTimer()
        module = DominantPatterns(
            classifier=target,
            eps=EPS,
            image_size=images.shape[-1],
            channels=images.shape[1],
            steps_per_training_step=k,
        )
        batches = TensorDataset(images.cpu().repeat(steps + (timer.warmup + 2) * k, 1, 1, 1))
        loader = DataLoader(batches, batch_size=len(images))
        return fit_seconds_per_step(module, device, timer, train_dataloaders=loader, max_epochs=1)

    return run


def measure(
    target: str = "digits:cnn",
    batch: int = 32,
    size: int = 32,
    channels: int = 1,
    steps: int = 100,
    repeats: int = 5,
    device: str = "cpu",
    ks: tuple[int, ...] = (1,),
) -> Timings:
    """Interleaved timings of the bare loop, the engine and the module (one row per K)."""
    model = build_classifier(target).freeze().to(device)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, channels, size, size, generator=generator).to(device)
    loops = {
        "bare PyTorch": bare_loop(model, images, device),
        "engine (UniversalPattern + PatternObjective)": engine_loop(model, images, device),
    }
    for k in ks:
        name = f"module (DominantPatterns + Trainer), K={k}"
        loops[name] = module_loop(target, images, device, k)
    return interleave(loops, steps, repeats)


def main() -> None:
    """Time the loops and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="digits:cnn")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32, help="image side")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--steps-per-training-step", type=int, nargs="+", default=[1])
    add_timing_args(parser, steps=100)
    args = parser.parse_args()
    threads = pin_threads(args.threads)
    timings = measure(
        args.target,
        args.batch,
        args.size,
        args.channels,
        args.steps,
        args.repeats,
        args.device,
        tuple(args.steps_per_training_step),
    )
    what = f"{args.target}, batch {args.batch} x {args.channels} x {args.size}^2"
    print(header(what, args.device, threads, args.steps, args.repeats))
    print(timings.table())


if __name__ == "__main__":
    main()
