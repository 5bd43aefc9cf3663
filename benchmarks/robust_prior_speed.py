"""Cost of one adversarial training step against its physical floor, in one run.

An adversarial training step with k PGD steps needs k forward/backward passes for the
attack (gradients with respect to the input) and one for the update: (k + 1) passes. The
floor is a bare PyTorch loop doing exactly that; our engine (``PGD`` + the update) and the
``RobustClassifierModule`` under a Lightning Trainer are timed against it on the same
model and batch. ``use_best`` (the robustness library's default, and ours) costs one more
forward pass per step; the row without it is the like-for-like comparison. Timed by
``benchmarks.timing`` (interleaved rounds, median and min-max; its ``SpeedScript`` is the
command line).

    python -m benchmarks.robust_prior_speed --model digits:cnn --batch 128 --pgd-steps 7
    python -m benchmarks.robust_prior_speed --model timm:resnet50 --size 224 --batch 64 \\
        --precision bf16-mixed --channels-last          # on a GPU
"""

from __future__ import annotations

import argparse
import contextlib

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.timing import (
    Loop,
    SpeedScript,
    StepTimer,
    Timings,
    fit_seconds_per_step,
    interleave,
    step_loop,
)
from inversion import build_classifier
from inversion.attacks import PGD
from inversion.robust_prior import default_step_size
from model_inversion.lightning_modules import RobustClassifierModule


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


def module_loop(args, images, labels, use_best: bool) -> Loop:
    """RobustClassifierModule under a Trainer, a fresh fit per round."""

    def run(steps: int) -> float:
        module = RobustClassifierModule(
            classifier=args.model,
            pretrained=False,
            num_classes=args.classes,
            optimizer="sgd",
            lr=0.01,
            eps=args.eps,
            steps=args.pgd_steps,
            use_best=use_best,
            channels_last=args.channels_last,
        )
        timer = StepTimer(warmup=2)
        repeats = steps + timer.warmup + 2
        data = TensorDataset(images.cpu().repeat(repeats, 1, 1, 1), labels.cpu().repeat(repeats))
        return fit_seconds_per_step(
            module,
            args.device,
            timer,
            train_dataloaders=DataLoader(data, batch_size=len(images)),
            precision=args.precision,
            max_epochs=1,
        )

    return run


def measure(args: argparse.Namespace) -> Timings:
    """Interleaved timings of the floor, the engine and the module (with and without use_best)."""
    torch.manual_seed(0)
    device = args.device
    images = torch.rand(args.batch, args.channels, args.size, args.size, device=device)
    labels = torch.randint(0, args.classes, (args.batch,), device=device)
    memory = torch.channels_last if args.channels_last else torch.contiguous_format
    images = images.contiguous(memory_format=memory)

    def fresh():
        model = build_classifier(args.model, pretrained=False, num_classes=args.classes)
        model = model.to(device, memory_format=memory).train()
        return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    model, optimizer = fresh()
    k = args.pgd_steps
    step = bare_step(model, optimizer, images, labels, args.eps, k, args.precision, device)
    loops = {f"bare loop: {k} + 1 passes": step_loop(step, device)}
    for use_best in (False, True):
        model, optimizer = fresh()
        attack = PGD(args.eps, default_step_size(args.eps, k), k, "l2", use_best=use_best)
        step = engine_step(model, optimizer, images, labels, attack, args.precision, device)
        loops[f"engine: PGD + update (use_best={use_best})"] = step_loop(step, device)
    for use_best in (False, True):
        name = f"module: RobustClassifierModule + Trainer (use_best={use_best})"
        loops[name] = module_loop(args, images, labels, use_best)
    return interleave(loops, args.steps, args.repeats, warmup=2)


def arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (their defaults are the README row's)."""
    parser.add_argument("--model", default="digits:cnn")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--pgd-steps", type=int, default=7, help="PGD steps per training step")
    parser.add_argument("--eps", type=float, default=1.0)
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--channels-last", action="store_true")


def what(args: argparse.Namespace) -> str:
    """The header's description of the benchmark."""
    return (
        f"{args.model}, batch {args.batch} x {args.channels} x {args.size}^2, PGD-{args.pgd_steps} "
        f"L2, {args.precision}, channels_last={args.channels_last}"
    )


SCRIPT = SpeedScript(__doc__ or "", arguments, measure, what, steps=6)

if __name__ == "__main__":
    SCRIPT.main()
