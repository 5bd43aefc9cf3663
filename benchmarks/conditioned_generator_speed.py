"""Time per training step: the conditioned-generator module against a bare PyTorch loop.

Both do the same maths on the same generator architecture and frozen classifier, batch
and loss (hot-matrix encoding, dropout, KL + cross-entropy + mean pairwise feature
cosine over same-class pairs, Adam):

- bare: a hand-written loop of torch calls (latents drawn on the device, the encodings
  and the loss written inline, the penultimate features read by one forward hook);
- module: ``ConditionedGeneratorInversion`` under a Lightning Trainer with
  ``LatentsDataModule`` (seeded draws on the CPU, moved to the device; steps timed
  between consecutive ``on_train_batch_end`` calls, so data loading, logging and every
  hook are included), once per ``--steps-per-training-step`` K and once per
  ``--compiled`` K with ``compile=True`` (generator and classifier compiled).

Timed by ``benchmarks.timing`` (interleaved rounds, median and min-max; its
``SpeedScript`` is the command line).

    python -m benchmarks.conditioned_generator_speed --target digits:cnn --batch 64
    python -m benchmarks.conditioned_generator_speed --steps-per-training-step 1 4 16 --compiled 1
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

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


MODULE = "module (ConditionedGeneratorInversion + Trainer)"  # the prefix of the module's rows


def module_loop(target: str, batch: int, device: str, precision: str) -> ModuleLoop:
    """The LightningModule, a fresh fit per round."""

    def at(k: int, compile: bool) -> Loop:
        def run(steps: int) -> float:
            timer = StepTimer()
            module = ConditionedGeneratorInversion(
                classifier=target, lr=5e-3, steps_per_training_step=k, compile=compile, **OPTIONS
            )
            batches = steps + (timer.warmup + 2) * k
            data = LatentsDataModule(batch_size=batch, batches_per_epoch=batches)
            return fit_seconds_per_step(
                module, device, timer, datamodule=data, max_epochs=1, precision=precision
            )

        return run

    return at


def arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--target", default="digits:cnn")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])


def measure(args: argparse.Namespace) -> Timings:
    """Interleaved timings of the bare loop and the module's rows."""
    torch.manual_seed(0)
    loops = {"bare PyTorch": bare_loop(args.target, args.batch, args.device, args.precision)}
    at = module_loop(args.target, args.batch, args.device, args.precision)
    loops.update(module_loops(MODULE, at, args.steps_per_training_step, args.compiled))
    return interleave(loops, args.steps, args.repeats)


def what(args: argparse.Namespace) -> str:
    """The header's description of the benchmark."""
    return f"{args.target}, batch {args.batch}, {args.precision}"


SCRIPT = SpeedScript(__doc__ or "", arguments, measure, what, steps=30, step_wise=True)

if __name__ == "__main__":
    SCRIPT.main()
