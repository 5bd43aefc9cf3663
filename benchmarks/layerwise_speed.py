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
``on_train_batch_end`` calls, so data loading, logging and hooks are included), once
per ``--steps-per-training-step`` K and once per ``--compiled`` K with ``compile=True``
(the classifier's blocks and the inverse blocks compiled).

Timed by ``benchmarks.timing`` (interleaved rounds, median and min-max; its
``SpeedScript`` is the command line): one table per ``--phases``.

    python -m benchmarks.layerwise_speed --steps-per-block 4 --batch 32
    python -m benchmarks.layerwise_speed --steps-per-training-step 1 4 16 --compiled 1
"""

from __future__ import annotations

import argparse
import math

import torch

from benchmarks.timing import (
    Loop,
    ModuleLoop,
    SpeedScript,
    StepTimer,
    Tables,
    Timings,
    fit_seconds_per_step,
    interleave,
    module_loops,
    step_loop,
)
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
from model_inversion.datamodules import SyntheticImagesDataModule
from model_inversion.lightning_modules import LayerwiseInversion

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


def bare_loop(model, stack, images, phase: str, steps: int, device: str) -> Loop:
    """The same maths in hand-written torch (``steps`` per block)."""
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

    return step_loop(blockwise if phase == "blockwise" else resync, device)


def engine_loop(blocks, stack, images, phase: str, steps: int, device: str) -> Loop:
    """``phase_loss`` + Adam (the plain-PyTorch engine; ``steps`` per block)."""
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

    return step_loop(step, device)


MODULE = "module (LayerwiseInversion + Trainer)"  # the prefix of the module's rows
PHASES = ("blockwise", "resync")


def module_loop(phase: str, batch: int, device: str) -> ModuleLoop:
    """The LightningModule, a fresh fit per round."""

    def at(k: int, compile: bool) -> Loop:
        def run(steps: int) -> float:
            timer = StepTimer()
            total = steps + (timer.warmup + 2) * k
            if phase == "blockwise":
                blockwise_steps, resync_steps = math.ceil(total / len(LAYERS)), 0
            else:
                blockwise_steps, resync_steps = 0, total
            module = LayerwiseInversion(
                classifier="digits:resnet",
                layers=LAYERS,
                export_path=None,
                blockwise_steps=blockwise_steps,
                resync_steps=resync_steps,
                steps_per_training_step=k,
                compile=compile,
            )
            data = SyntheticImagesDataModule(source="smooth", batch_size=batch)
            return fit_seconds_per_step(module, device, timer, datamodule=data)

        return run

    return at


def measure_phase(phase: str, args: argparse.Namespace) -> Timings:
    """Interleaved timings of the bare loop, the engine and the module's rows for one phase."""
    device, steps_per_block = args.device, args.steps_per_block
    torch.manual_seed(0)
    model = build_classifier("digits:resnet").freeze().to(device)
    blocks = split_classifier(model, LAYERS, (1, 32, 32)).to(device)
    generator = torch.Generator().manual_seed(0)
    images = noise_images("smooth", args.batch, 1, 32, generator).to(device)
    stack = InverterStack(blocks.shapes).to(device).train()
    loops = {
        "bare PyTorch": bare_loop(model, stack, images, phase, steps_per_block, device),
        "engine (phase_loss + Adam)": engine_loop(
            blocks, stack, images, phase, steps_per_block, device
        ),
    }
    at = module_loop(phase, args.batch, device)
    loops.update(module_loops(MODULE, at, args.steps_per_training_step, args.compiled))
    return interleave(loops, steps_per_block * len(LAYERS), args.repeats)


def measure(args: argparse.Namespace) -> Tables:
    """One table per phase of ``--phases``."""
    return {phase: measure_phase(phase, args) for phase in args.phases}


def arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options (the timed steps per round: steps per block x blocks)."""
    parser.add_argument("--steps-per-block", type=int, default=4, help="timed steps per block")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))


def what(args: argparse.Namespace) -> str:
    """The header's description of the benchmark."""
    return f"digits:resnet, {len(LAYERS)} blocks, batch {args.batch}"


SCRIPT = SpeedScript(
    __doc__ or "",
    arguments,
    measure,
    what,
    steps=lambda args: args.steps_per_block * len(LAYERS),
    step_wise=True,
)

if __name__ == "__main__":
    SCRIPT.main()
