"""Time per pattern-optimisation step: the DominantPatterns module against a bare PyTorch loop.

All three do the same maths on the same model and proxy batch (the dominant-pattern
objective 1 - cos(f(p), f(x + p)) on the logits, one forward pass of the pattern and the
batch together, Adam, projection into the L-inf ball):

- bare: a hand-written loop of torch calls,
- engine: ``UniversalPattern`` + ``PatternObjective`` + Adam (inversion/, plain PyTorch),
- module: ``DominantPatterns`` under a Lightning Trainer (steps timed between consecutive
  ``on_train_batch_end`` calls, so data loading and hooks are included).

    python -m benchmarks.dominant_patterns_speed --target digits:cnn --batch 32
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.timing import StepTimer, fit_seconds_per_step, ratio_table, time_steps
from inversion import build_classifier
from inversion.dominant_patterns import (
    PatternObjective,
    UniversalPattern,
    pattern_optimizer,
)
from lightning_modules import DominantPatterns

EPS = 10 / 255


def bare_loop(model, images: torch.Tensor, steps: int, device: str) -> float:
    """Seconds per step of the same maths written directly in torch."""
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

    return time_steps(step, steps, device)


def engine_loop(model, images: torch.Tensor, steps: int, device: str) -> float:
    """Seconds per step of the inversion/ pieces the module and ``find_pattern`` use."""
    pattern = UniversalPattern(images.shape[1], images.shape[-1], EPS).to(device)
    optimizer = pattern_optimizer(pattern)
    objective = PatternObjective("dominant")

    def step() -> None:
        pattern.project_()
        loss = objective(model, pattern, images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return time_steps(step, steps, device)


def module_loop(target: str, images: torch.Tensor, steps: int, device: str) -> float:
    """Seconds per training step of the LightningModule (same batch, repeated)."""
    timer = StepTimer()
    module = DominantPatterns(
        classifier=target, eps=EPS, image_size=images.shape[-1], channels=images.shape[1]
    )
    batches = TensorDataset(images.cpu().repeat(steps + timer.warmup + 1, 1, 1, 1))
    loader = DataLoader(batches, batch_size=len(images))
    return fit_seconds_per_step(module, device, timer, train_dataloaders=loader, max_epochs=1)


def main() -> None:
    """Time the three loops and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="digits:cnn")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32, help="image side")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    model = build_classifier(args.target).freeze().to(args.device)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, args.channels, args.size, args.size, generator=generator)
    images = images.to(args.device)
    bare = bare_loop(model, images, args.steps, args.device)
    engine = engine_loop(model, images, args.steps, args.device)
    module = module_loop(args.target, images, args.steps, args.device)
    print(
        f"{args.target}, batch {args.batch} x {args.channels} x {args.size}^2, {args.steps} "
        f"steps, device {args.device}, torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}"
    )
    rows = [
        ("bare PyTorch", bare),
        ("engine (UniversalPattern + PatternObjective)", engine),
        ("module (DominantPatterns + Trainer)", module),
    ]
    print(ratio_table(rows))


if __name__ == "__main__":
    main()
