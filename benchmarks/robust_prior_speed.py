"""Cost of one adversarial training step against its physical floor, in one run.

An adversarial training step with k PGD steps needs k forward/backward passes for the
attack (gradients with respect to the input) and one for the update: (k + 1) passes. The
floor is a bare PyTorch loop doing exactly that; our engine (``PGD`` + the update) and the
``RobustClassifierModule`` under a Lightning Trainer are timed against it on the same
model and batch. ``use_best`` (the robustness library's default, and ours) costs one more
forward pass per step; the row without it is the like-for-like comparison.

    python -m benchmarks.robust_prior_speed --model digits:cnn --batch 128 --steps 7
    python -m benchmarks.robust_prior_speed --model timm:resnet50 --size 224 --batch 64 \\
        --precision bf16-mixed --channels-last          # on a GPU
"""

from __future__ import annotations

import argparse
import contextlib

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.timing import StepTimer, fit_seconds_per_step, ratio_table, time_steps
from inversion import build_classifier
from inversion.attacks import PGD
from inversion.robust_prior import default_step_size
from lightning_modules import RobustClassifierModule


def autocast(device: str, precision: str):
    """The autocast context of a Lightning precision setting."""
    if precision == "bf16-mixed":
        return torch.autocast(device.split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext()


def bare_step(model, optimizer, images, labels, eps, steps, precision, device):
    """One step of the floor: k input-gradient passes, one parameter pass, SGD."""
    step_size = default_step_size(eps, steps)

    def step() -> None:
        model.eval()
        adv = images.clone()
        for _ in range(steps):
            adv.requires_grad_(True)
            with autocast(device, precision):
                loss = F.cross_entropy(model(adv).float(), labels, reduction="sum")
            (grad,) = torch.autograd.grad(loss, [adv])
            with torch.no_grad():
                norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                adv = adv + step_size * grad / norms
                delta = adv - images
                scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1)
                adv = (images + delta * scale.view(-1, 1, 1, 1)).clamp(0, 1)
        model.train()
        with autocast(device, precision):
            loss = F.cross_entropy(model(adv).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def engine_step(model, optimizer, images, labels, attack, precision, device):
    """One step of the engine: ``PGD`` from inversion/ and the same update."""

    def step() -> None:
        with autocast(device, precision):
            adv = attack(model, images, labels)
            loss = F.cross_entropy(model(adv).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def module_seconds(args, images, labels, use_best: bool) -> float:
    """Seconds per training step of RobustClassifierModule under a Trainer."""
    module = RobustClassifierModule(
        classifier=args.model,
        pretrained=False,
        num_classes=args.classes,
        optimizer="sgd",
        lr=0.01,
        eps=args.eps,
        steps=args.steps,
        use_best=use_best,
        channels_last=args.channels_last,
    )
    repeats = (args.repeats + 7) * len(images)
    data = TensorDataset(
        images.cpu().repeat(repeats // len(images), 1, 1, 1),
        labels.cpu().repeat(repeats // len(images)),
    )
    return fit_seconds_per_step(
        module,
        args.device,
        StepTimer(warmup=5),
        train_dataloaders=DataLoader(data, batch_size=len(images)),
        precision=args.precision,
        max_epochs=1,
    )


def main() -> None:
    """Time the floor, the engine and the module; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits:cnn")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=7, help="PGD steps per training step")
    parser.add_argument("--eps", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=20, help="timed steps")
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    images = torch.rand(args.batch, args.channels, args.size, args.size, device=args.device)
    labels = torch.randint(0, args.classes, (args.batch,), device=args.device)
    memory = torch.channels_last if args.channels_last else torch.contiguous_format
    images = images.contiguous(memory_format=memory)

    def fresh():
        model = build_classifier(args.model, pretrained=False, num_classes=args.classes)
        model = model.to(args.device, memory_format=memory).train()
        return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    rows = []
    model, optimizer = fresh()
    step = bare_step(
        model, optimizer, images, labels, args.eps, args.steps, args.precision, args.device
    )
    rows.append(
        (f"bare loop: {args.steps} + 1 passes", time_steps(step, args.repeats, args.device))
    )
    for use_best in (False, True):
        model, optimizer = fresh()
        attack = PGD(
            args.eps, default_step_size(args.eps, args.steps), args.steps, "l2", use_best=use_best
        )
        step = engine_step(model, optimizer, images, labels, attack, args.precision, args.device)
        name = f"engine: PGD + update (use_best={use_best})"
        rows.append((name, time_steps(step, args.repeats, args.device)))
    for use_best in (False, True):
        name = f"module: RobustClassifierModule + Trainer (use_best={use_best})"
        rows.append((name, module_seconds(args, images, labels, use_best)))
    print(
        f"{args.model}, batch {args.batch} x {args.channels} x {args.size}^2, PGD-{args.steps} L2, "
        f"{args.precision}, channels_last={args.channels_last}, device {args.device}, "
        f"torch {torch.__version__}"
    )
    print(ratio_table(rows))


if __name__ == "__main__":
    main()
