"""Time per training step: the conditioned-generator module against a bare PyTorch loop.

Both do the same maths on the same generator architecture and frozen classifier, batch
and loss (hot-matrix encoding, dropout, KL + cross-entropy + mean pairwise feature
cosine over same-class pairs, Adam):

- bare: a hand-written loop of torch calls (latents drawn on the device, the encodings
  and the loss written inline, the penultimate features read by one forward hook);
- module: ``ConditionedGeneratorInversion`` under a Lightning Trainer with
  ``LatentsDataModule`` (seeded draws on the CPU, moved to the device; steps timed
  between consecutive ``on_train_batch_end`` calls, so data loading, logging and every
  hook are included), once per ``--steps-per-training-step`` K.

Timed by ``benchmarks.timing.interleave`` (interleaved rounds, median and min-max).

    python -m benchmarks.conditioned_generator_speed --target digits:cnn --batch 64
    python -m benchmarks.conditioned_generator_speed --steps-per-training-step 1 4 16
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

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
from inversion.conditioned_generator import ConditionedGenerator
from inversion.errors import InversionError
from model_inversion.datamodules import LatentsDataModule
from model_inversion.lightning_modules import ConditionedGeneratorInversion

OPTIONS: dict[str, Any] = {  # init args of the generator and of the module
    "conditioning": "matrix",
    "dropout": 0.5,
    "latent_dim": 64,
    "width": 16,
}


def bare_loop(target: str, batch: int, device: str, precision: str) -> Loop:
    """The same maths written directly in torch."""
    classifier = build_classifier(target).freeze().to(device)
    k = classifier.num_classes
    generator = ConditionedGenerator(k, 32, 1, **OPTIONS).to(device)
    matrix_project = generator.matrix_project
    if matrix_project is None:  # OPTIONS conditioning is "matrix": it has one
        raise InversionError("the bare loop needs a generator with matrix conditioning.")
    optimizer = torch.optim.Adam(generator.parameters(), lr=5e-3, betas=(0.5, 0.999))
    features: dict[str, Tensor] = {}
    if classifier.head is None:
        raise InversionError(f"{target} has no known classification head to read features at.")
    head = classifier.net.get_submodule(classifier.head)
    head.register_forward_pre_hook(lambda _m, inputs: features.update(x=inputs[0]))
    labels = torch.arange(batch, device=device) % k
    onehot = F.one_hot(labels, k).float()
    matrix = torch.maximum(onehot[:, :, None], onehot[:, None, :])[:, None]
    same_class = (labels[:, None] == labels[None, :]).float().fill_diagonal_(0)
    autocast = precision == "bf16-mixed"

    def step() -> None:
        latent = torch.randn(batch, 64, device=device)
        kind = device.split(":")[0]
        with torch.autocast(device_type=kind, dtype=torch.bfloat16, enabled=autocast):
            x = torch.cat([generator.project(latent), matrix_project(matrix)], 1)
            for stage in generator.stages:
                x = stage(F.interpolate(x, scale_factor=2, mode="nearest"))
            images = torch.sigmoid(generator.to_image(x))
            logits = classifier(images).float()
        kl = -(onehot * F.log_softmax(logits, 1)).sum(1).mean()  # KL to a one-hot
        ce = F.cross_entropy(logits, labels)
        unit = F.normalize(features["x"].float(), dim=1)
        cosine = (unit @ unit.T * same_class).sum() / same_class.sum()
        loss = kl + ce + 5.0 * cosine
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step_loop(step, device)


def module_loop(target: str, batch: int, device: str, precision: str, k: int) -> Loop:
    """The LightningModule, a fresh fit per round."""

    def run(steps: int) -> float:
        timer = StepTimer()
        module = ConditionedGeneratorInversion(
            classifier=target, lr=5e-3, steps_per_training_step=k, **OPTIONS
        )
        batches = steps + (timer.warmup + 2) * k
        data = LatentsDataModule(batch_size=batch, batches_per_epoch=batches)
        return fit_seconds_per_step(
            module, device, timer, datamodule=data, max_epochs=1, precision=precision
        )

    return run


def measure(
    target: str = "digits:cnn",
    batch: int = 64,
    steps: int = 30,
    repeats: int = 5,
    device: str = "cpu",
    precision: str = "32-true",
    ks: tuple[int, ...] = (1,),
) -> Timings:
    """Interleaved timings of the bare loop and the module (one row per K)."""
    torch.manual_seed(0)
    loops = {"bare PyTorch": bare_loop(target, batch, device, precision)}
    for k in ks:
        name = f"module (ConditionedGeneratorInversion + Trainer), K={k}"
        loops[name] = module_loop(target, batch, device, precision, k)
    return interleave(loops, steps, repeats)


def main() -> None:
    """Time the loops and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="digits:cnn")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--steps-per-training-step", type=int, nargs="+", default=[1])
    add_timing_args(parser, steps=30)
    args = parser.parse_args()
    threads = pin_threads(args.threads)
    timings = measure(
        args.target,
        args.batch,
        args.steps,
        args.repeats,
        args.device,
        args.precision,
        tuple(args.steps_per_training_step),
    )
    what = f"{args.target}, batch {args.batch}, {args.precision}"
    print(header(what, args.device, threads, args.steps, args.repeats))
    print(timings.table())


if __name__ == "__main__":
    main()
