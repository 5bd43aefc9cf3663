"""Time per training step of layer-wise inversion: the module against a bare PyTorch loop.

All loops do the same maths on digits:resnet cut at its stem, stages and penultimate
layer, with a batch of smooth noise (fixed, so data loading is not timed):

- blockwise: each block in turn for ``--steps`` steps (frozen prefix without gradients,
  inverse block, relative-MSE reconstruction + cycle through the classifier block,
  Adam);
- resync: the whole chain from the penultimate layer, image term + cycle at every block.

Loops: bare (hand-written torch calls on the classifier's own modules), engine
(``inversion.layerwise.phase_loss`` + Adam, as ``train_stack`` runs it), module
(``LayerwiseInversion`` under a Lightning Trainer, timed between consecutive
``on_train_batch_end`` calls, so data loading, logging and hooks are included).

    python -m benchmarks.layerwise_speed --steps 20 --batch 32
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.timing import StepTimer, fit_seconds_per_step, ratio_table, time_steps
from datamodules import SyntheticImagesDataModule
from inversion import build_classifier
from inversion.data.noise import noise_images
from inversion.layerwise import (
    InverterStack,
    LossWeights,
    Schedule,
    build_optimizers,
    phase_loss,
    set_lr,
)
from inversion.models.split import split_classifier
from lightning_modules import LayerwiseInversion

LAYERS = ["stem", "stage1", "stage2", "stage3", "penultimate"]


def bare_prefix(model, images: torch.Tensor, depth: int = len(LAYERS)) -> list[torch.Tensor]:
    """The digits ResNet's forward up to layer ``depth``, layer by layer, written out."""
    h = [images]
    for k in range(1, depth + 1):
        h.append(bare_block(model, k, h[-1]))
    return h


def bare_block(model, k: int, h: torch.Tensor) -> torch.Tensor:
    net = model.net
    if k == 1:
        h = (h - model.mean) / model.std
    return [net.stem, net.stage1, net.stage2, net.stage3, net.pool][k - 1](h)


def rel_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (prediction - target).pow(2).mean() / target.var().clamp_min(1e-8)


def bare_loop(model, stack, images, phase: str, steps: int, device: str) -> float:
    """Seconds per step of the same maths in hand-written torch."""
    per_block = [torch.optim.Adam(block.parameters(), lr=1e-3) for block in stack.blocks]
    whole = torch.optim.Adam(stack.parameters(), lr=3e-4)
    state = {"step": 0}

    def blockwise() -> None:
        k = state["step"] // steps % len(LAYERS) + 1
        state["step"] += 1
        with torch.no_grad():
            h = bare_prefix(model, images, k)
        inverted = stack.blocks[k - 1](h[k])
        loss = rel_mse(inverted, h[k - 1]) + rel_mse(bare_block(model, k, inverted), h[k])
        per_block[k - 1].zero_grad(set_to_none=True)
        loss.backward()
        per_block[k - 1].step()

    def resync() -> None:
        with torch.no_grad():
            h = bare_prefix(model, images)
        chain = [h[-1]]
        for k in range(len(LAYERS), 0, -1):
            chain.append(stack.blocks[k - 1](chain[-1]))
        chain = chain[::-1]
        cycle = torch.stack(
            [rel_mse(bare_block(model, k, chain[k - 1]), h[k]) for k in range(1, len(LAYERS) + 1)]
        ).mean()
        loss = rel_mse(chain[0], images) + cycle
        whole.zero_grad(set_to_none=True)
        loss.backward()
        whole.step()

    return time_steps(blockwise if phase == "blockwise" else resync, steps * len(LAYERS), device)


def engine_loop(blocks, stack, images, phase: str, steps: int, device: str) -> float:
    """Seconds per step of ``phase_loss`` + Adam (the plain-PyTorch engine)."""
    schedule = Schedule(len(LAYERS), blockwise_steps=steps, resync_steps=steps * len(LAYERS))
    optimizers = build_optimizers(stack, schedule)
    offset = 0 if phase == "blockwise" else len(LAYERS) * steps
    state = {"step": 0}

    def step() -> None:
        current = schedule.at(offset + state["step"] % (steps * len(LAYERS)))
        state["step"] += 1
        optimizer = optimizers[current.optimizer]
        set_lr(optimizer, current.lr)
        loss, _ = phase_loss(current, blocks, stack, images, LossWeights())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return time_steps(step, steps * len(LAYERS), device)


def module_loop(phase: str, steps: int, batch: int, device: str) -> float:
    """Seconds per training step of the LightningModule."""
    blockwise_steps, resync_steps = (steps, 0) if phase == "blockwise" else (0, steps * len(LAYERS))
    module = LayerwiseInversion(
        classifier="digits:resnet",
        layers=LAYERS,
        export_path=None,
        blockwise_steps=blockwise_steps,
        resync_steps=resync_steps,
    )
    data = SyntheticImagesDataModule(source="smooth", batch_size=batch)
    return fit_seconds_per_step(module, device, StepTimer(warmup=2), datamodule=data)


def main() -> None:
    """Time the loops for both phases and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per block")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = build_classifier("digits:resnet").freeze().to(args.device)
    blocks = split_classifier(model, LAYERS, (1, 32, 32)).to(args.device)
    generator = torch.Generator().manual_seed(0)
    images = noise_images("smooth", args.batch, 1, 32, generator).to(args.device)
    print(
        f"digits:resnet, {len(LAYERS)} blocks, batch {args.batch}, {args.steps} steps per "
        f"block, device {args.device}, torch {torch.__version__}"
    )
    for phase in ("blockwise", "resync"):
        stack = InverterStack(blocks.shapes).to(args.device).train()
        bare = bare_loop(model, stack, images, phase, args.steps, args.device)
        engine = engine_loop(blocks, stack, images, phase, args.steps, args.device)
        module = module_loop(phase, args.steps, args.batch, args.device)
        print(f"\n{phase}:\n")
        print(
            ratio_table(
                [
                    ("bare PyTorch", bare),
                    ("engine (phase_loss + Adam)", engine),
                    ("module (LayerwiseInversion + Trainer)", module),
                ]
            )
        )


if __name__ == "__main__":
    main()
