"""Time per optimisation step: the ClassInversion module against a bare PyTorch loop.

All three do the same maths on the same model and batch (PII: circular jitter, ensemble
replication, ColorShift, cross-entropy, Adam, clamp; one stage, so no zoom transitions):

- bare: a hand-written loop of torch calls,
- engine: ``ClassInverter.step()`` (inversion/, plain PyTorch),
- module: ``ClassInversion`` under a Lightning Trainer (steps timed between
  consecutive ``on_train_batch_end`` calls, so data loading and hooks are included).

    python -m benchmarks.class_inversion_speed --target digits:cnn --batch 40 --ensemble 4
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from benchmarks.timing import fit_seconds_per_step, ratio_table, time_steps
from datamodules import ClassTargetsDataModule
from inversion import build_classifier
from inversion.class_inversion import ClassInverter, recipe_from
from lightning_modules import ClassInversion


def bare_loop(model, labels, steps: int, ensemble: int, size: int, device: str) -> float:
    """Seconds per step of the same maths written directly in torch."""
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

    return time_steps(step, steps, device)


def engine_loop(model, labels, recipe, steps: int, size: int, device: str) -> float:
    """Seconds per ``ClassInverter.step()``."""
    inverter = ClassInverter(model, recipe, size, 1, torch.Generator().manual_seed(0))
    inverter.start(labels)
    return time_steps(inverter.step, steps, device)


def module_loop(target: str, options: dict, per_class: int, device: str) -> float:
    """Seconds per training step of the LightningModule."""
    module = ClassInversion(
        classifier=target, recipe="pii", options=options, image_size=32, channels=1
    )
    data = ClassTargetsDataModule(num_classes=10, images_per_class=per_class, batch_size=10_000)
    return fit_seconds_per_step(module, device, datamodule=data)


def main() -> None:
    """Time the three loops and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="digits:cnn")
    parser.add_argument("--per-class", type=int, default=4, help="images per class (10 classes)")
    parser.add_argument("--ensemble", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    model = build_classifier(args.target).freeze().to(args.device)
    labels = torch.arange(10, device=args.device).repeat_interleave(args.per_class)
    options = {"zoom_stages": 1, "steps_per_stage": args.steps + 12, "ensemble": args.ensemble}
    recipe = recipe_from("pii", options)
    torch.manual_seed(0)
    bare = bare_loop(model, labels, args.steps, args.ensemble, 32, args.device)
    engine = engine_loop(model, labels, recipe, args.steps, 32, args.device)
    module = module_loop(args.target, options, args.per_class, args.device)
    print(
        f"{args.target}, {len(labels)} images x ensemble {args.ensemble}, {args.steps} steps, "
        f"device {args.device}, torch {torch.__version__}"
    )
    rows = [
        ("bare PyTorch", bare),
        ("engine (ClassInverter.step)", engine),
        ("module (ClassInversion + Trainer)", module),
    ]
    print(ratio_table(rows))


if __name__ == "__main__":
    main()
