"""Time per pattern-optimisation step: the DominantPatterns module against a bare PyTorch loop.

All three do the same maths on the same model and proxy batch (the dominant-pattern
objective 1 - cos(f(p), f(x + p)) on the logits, one forward pass of the pattern and the
batch together, Adam, projection into the L-inf ball):

- bare: a hand-written loop of torch calls,
- engine: ``UniversalPattern`` + ``PatternObjective`` + Adam (inversion/, plain PyTorch),
- module: ``DominantPatterns`` under a Lightning Trainer (steps timed between consecutive
  ``on_train_batch_end`` calls, so data loading and hooks are included), once per
  ``--steps-per-training-step`` K and once per ``--compiled`` K with ``compile=True``
  (the classifier compiled).

Timed by ``benchmarks.timing`` (interleaved rounds, median and min-max; its
``SpeedScript`` is the command line).

    python -m benchmarks.dominant_patterns_speed --target digits:cnn --batch 32
    python -m benchmarks.dominant_patterns_speed --steps-per-training-step 1 4 16 --compiled 1
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

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


MODULE = "module (DominantPatterns + Trainer)"  # the prefix of the module's rows


def module_loop(target: str, images: torch.Tensor, device: str) -> ModuleLoop:
    """The LightningModule (the same batch, repeated), a fresh fit per round."""

    def at(k: int, compile: bool) -> Loop:
        def run(steps: int) -> float:
            timer = StepTimer()
            module = DominantPatterns(
                classifier=target,
                eps=EPS,
                image_size=images.shape[-1],
                channels=images.shape[1],
                steps_per_training_step=k,
                compile=compile,
            )
            repeats = steps + (timer.warmup + 2) * k
            batches = TensorDataset(images.cpu().repeat(repeats, 1, 1, 1))
            loader = DataLoader(batches, batch_size=len(images))
            return fit_seconds_per_step(
                module, device, timer, train_dataloaders=loader, max_epochs=1
            )

        return run

    return at


def arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--target", default="digits:cnn")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32, help="image side")
    parser.add_argument("--channels", type=int, default=1)


def measure(args: argparse.Namespace) -> Timings:
    """Interleaved timings of the bare loop, the engine and the module's rows."""
    device = args.device
    model = build_classifier(args.target).freeze().to(device)
    generator = torch.Generator().manual_seed(0)
    shape = (args.batch, args.channels, args.size, args.size)
    images = torch.rand(shape, generator=generator).to(device)
    loops = {
        "bare PyTorch": bare_loop(model, images, device),
        "engine (UniversalPattern + PatternObjective)": engine_loop(model, images, device),
    }
    at = module_loop(args.target, images, device)
    loops.update(module_loops(MODULE, at, args.steps_per_training_step, args.compiled))
    return interleave(loops, args.steps, args.repeats)


def what(args: argparse.Namespace) -> str:
    """The header's description of the benchmark."""
    return f"{args.target}, batch {args.batch} x {args.channels} x {args.size}^2"


SCRIPT = SpeedScript(__doc__ or "", arguments, measure, what, steps=100, step_wise=True)

if __name__ == "__main__":
    SCRIPT.main()
