"""Time per training step: the conditioned-generator module against a bare PyTorch loop.

Both do the same maths on the same generator architecture and frozen classifier, batch
and loss (hot-matrix encoding, dropout, KL + cross-entropy + mean pairwise feature
cosine over same-class pairs, Adam):

- bare: a hand-written loop of torch calls (latents drawn on the device, the encodings
  and the loss written inline, the penultimate features read by one forward hook);
- module: ``ConditionedGeneratorInversion`` under a Lightning Trainer with
  ``LatentsDataModule`` (seeded draws on the CPU, moved to the device; steps timed
  between consecutive ``on_train_batch_end`` calls, so data loading, logging and every
  hook are included).

    python -m benchmarks.conditioned_generator_speed --target digits:cnn --batch 64
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmarks.timing import StepTimer, fit_seconds_per_step, ratio_table, time_steps
from datamodules import LatentsDataModule
from inversion import build_classifier
from inversion.conditioned_generator import ConditionedGenerator
from inversion.errors import InversionError
from lightning_modules import ConditionedGeneratorInversion

OPTIONS: dict[str, Any] = {  # init args of the generator and of the module
    "conditioning": "matrix",
    "dropout": 0.5,
    "latent_dim": 64,
    "width": 16,
}


def bare_loop(target: str, batch: int, steps: int, device: str, precision: str) -> float:
    """Seconds per step of the same maths written directly in torch."""
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

    return time_steps(step, steps, device)


def module_loop(target: str, batch: int, steps: int, device: str, precision: str) -> float:
    """Seconds per training step of the LightningModule."""
    timer = StepTimer()
    module = ConditionedGeneratorInversion(classifier=target, lr=5e-3, **OPTIONS)
    data = LatentsDataModule(batch_size=batch, batches_per_epoch=steps + timer.warmup + 2)
    return fit_seconds_per_step(
        module, device, timer, datamodule=data, max_epochs=1, precision=precision
    )


def main() -> None:
    """Time both loops and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="digits:cnn")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    bare = bare_loop(args.target, args.batch, args.steps, args.device, args.precision)
    module = module_loop(args.target, args.batch, args.steps, args.device, args.precision)
    print(
        f"{args.target}, batch {args.batch}, {args.steps} steps, {args.precision}, "
        f"device {args.device}, torch {torch.__version__}"
    )
    rows = [("bare PyTorch", bare), ("module (ConditionedGeneratorInversion + Trainer)", module)]
    print(ratio_table(rows))


if __name__ == "__main__":
    main()
