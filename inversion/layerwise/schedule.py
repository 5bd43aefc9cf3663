"""Zero-shot layer-wise inversion: the losses, the two-phase schedule, a plain training loop.

Dong et al. 2021 ("Deep Neural Networks are Surprisingly Reversible"): cut a classifier
into blocks f_1..f_K, train one inverse g_k per block on synthetic inputs pushed through
the frozen prefix (phase ``blockwise``), then fine-tune the composition g_1 o ... o g_K
end to end with cycle-consistency at every block (phase ``resync``). The baseline
(``naive``) trains the same architecture end to end on the image loss alone.

Losses (every term is a relative MSE: the mean squared error divided by the target's
variance over the batch, so terms of different layers are comparable):

- blockwise, block k, with h_j = f_1..j(x): ``reconstruction`` g_k(h_k) vs h_{k-1}, and
  ``cycle`` f_k(g_k(h_k)) vs h_k;
- resync, from z = h_K through the chain h^_{k-1} = g_k(h^_k): ``image`` h^_0 vs x, and
  ``cycle`` the mean over k of f_k(h^_{k-1}) vs h_k;
- naive: ``image`` only.

The Lightning module (``model_inversion/lightning_modules/layerwise.py``) calls the same
functions once per training step; :func:`train_stack` is the same schedule as a plain loop.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
from torch import Tensor

from inversion.errors import InversionError
from inversion.layerwise.inverters import InverterStack
from inversion.models.split import ClassifierBlocks
from inversion.options import with_fields
from inversion.schedules import warmup_cosine

Method = Literal["layerwise", "naive"]
METHODS: tuple[str, ...] = get_args(Method)


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (see the module docstring).

    Attributes:
        reconstruction: Blockwise: g_k(h_k) vs the block input h_{k-1}.
        cycle: Blockwise: f_k(g_k(h_k)) vs h_k.
        resync_image: Resync: the composed inverter's image vs x.
        resync_cycle: Resync: f_k(h^_{k-1}) vs h_k, averaged over the blocks.
    """

    reconstruction: float = 1.0
    cycle: float = 1.0
    resync_image: float = 1.0
    resync_cycle: float = 1.0

    @classmethod
    def from_dict(cls, weights: dict[str, float] | None) -> LossWeights:
        """Build from a YAML dict; an unknown key lists the valid ones."""
        values = {k: float(v) for k, v in (weights or {}).items()}
        return with_fields(cls(), values, "loss weights")


@dataclasses.dataclass(frozen=True)
class Phase:
    """Where one training step stands in the schedule.

    Attributes:
        name: ``blockwise``, ``resync`` or ``naive``.
        block: The block trained (1-based) in ``blockwise``, else None.
        step: Step within this phase (for one block, in ``blockwise``).
        length: Steps of this phase (of one block, in ``blockwise``).
        optimizer: Index of the optimiser this phase steps (see :func:`build_optimizers`).
        lr: The learning rate of this step (cosine decay over the phase).
    """

    name: str
    block: int | None
    step: int
    length: int
    optimizer: int
    lr: float


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The phases of a run, step by step.

    ``layerwise``: ``blockwise_steps`` for each of blocks 1..K in turn, then
    ``resync_steps`` on the whole stack. ``naive``: ``naive_steps`` (default: as many as
    the layer-wise schedule in total) on the whole stack.

    Attributes:
        num_blocks: K.
        method: ``layerwise`` or ``naive``.
        blockwise_steps: Steps per block in the blockwise phase.
        resync_steps: Steps of the resync phase (0 skips it).
        naive_steps: Steps of the naive baseline (default: the layer-wise total).
        lr: Peak learning rate of the blockwise and naive phases (Adam).
        resync_lr: Peak learning rate of the resync phase.
    """

    num_blocks: int
    method: Method = "layerwise"
    blockwise_steps: int = 300
    resync_steps: int = 300
    naive_steps: int | None = None
    lr: float = 1e-3
    resync_lr: float = 3e-4

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InversionError(f"Unknown method {self.method!r}; choose one of {METHODS}.")
        if self.num_blocks < 1:
            raise InversionError("The classifier must be cut into at least one block.")
        if min(self.blockwise_steps, self.resync_steps, self.naive_steps or 0) < 0:
            raise InversionError("Step counts cannot be negative.")
        if self.total < 1:
            raise InversionError("The schedule has no steps; set blockwise_steps or resync_steps.")

    @property
    def total(self) -> int:
        """Steps of the whole run."""
        layerwise = self.num_blocks * self.blockwise_steps + self.resync_steps
        if self.method == "naive":
            return layerwise if self.naive_steps is None else self.naive_steps
        return layerwise

    @property
    def trained_depths(self) -> tuple[int, ...]:
        """The depths (numbers of blocks, 1-based) that this schedule trains inverters for.

        Blockwise only (``layerwise`` with ``resync_steps: 0``): every depth d, inverted
        by the first d blocks, each trained on its own block. With a re-sync the whole
        stack is fine-tuned to invert from the deepest cut, so its first d blocks are no
        longer what was trained for depth d; the naive decoder is trained from the deepest
        cut only. Both: the deepest depth only (per-depth numbers then come from one run
        per depth, cut at that depth, as ``benchmarks/layerwise_table.py`` does).
        """
        if self.method == "layerwise" and self.resync_steps == 0:
            return tuple(range(1, self.num_blocks + 1))
        return (self.num_blocks,)

    def at(self, step: int) -> Phase:
        """The phase of global step ``step`` (0-based)."""
        if self.method == "naive":
            lr = warmup_cosine(step, self.total, peak=self.lr)
            return Phase("naive", None, step, self.total, 0, lr)
        blockwise = self.num_blocks * self.blockwise_steps
        if step < blockwise:
            block, inner = divmod(step, self.blockwise_steps)
            lr = warmup_cosine(inner, self.blockwise_steps, peak=self.lr)
            return Phase("blockwise", block + 1, inner, self.blockwise_steps, block, lr)
        inner = step - blockwise
        lr = warmup_cosine(inner, self.resync_steps, peak=self.resync_lr)
        return Phase("resync", None, inner, self.resync_steps, self.num_blocks, lr)


def build_optimizers(stack: InverterStack, schedule: Schedule) -> list[torch.optim.Optimizer]:
    """One Adam per block (blockwise) and one over the whole stack (resync or naive).

    Index k - 1 steps block k; index K the whole stack (index 0 for ``naive``).
    """
    if schedule.method == "naive":
        return [torch.optim.Adam(stack.parameters(), lr=schedule.lr)]
    per_block = [torch.optim.Adam(block.parameters(), lr=schedule.lr) for block in stack.blocks]
    return [*per_block, torch.optim.Adam(stack.parameters(), lr=schedule.resync_lr)]


def relative_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over the target's variance (float32, target detached)."""
    target = target.detach().float()
    error = (prediction.float() - target).pow(2).mean()
    return error / target.var().clamp_min(1e-8)


def blockwise_loss(
    blocks: ClassifierBlocks,
    stack: InverterStack,
    block: int,
    images: Tensor,
    weights: LossWeights,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Train g_block on the prefix's activations of ``images`` (synthetic)."""
    with torch.no_grad():
        hs = blocks.prefix(images, block)
    h_in, h_out = hs[block - 1], hs[block]
    inverted = stack.blocks[block - 1](h_out)
    parts = {"reconstruction": relative_mse(inverted, h_in)}
    loss = weights.reconstruction * parts["reconstruction"]
    if weights.cycle:
        parts["cycle"] = relative_mse(blocks.block(block, inverted), h_out)
        loss = loss + weights.cycle * parts["cycle"]
    return loss, parts


def resync_loss(
    blocks: ClassifierBlocks, stack: InverterStack, images: Tensor, weights: LossWeights
) -> tuple[Tensor, dict[str, Tensor]]:
    """Fine-tune the whole chain from the last layer: image term + cycle at every block."""
    depth = len(stack)
    with torch.no_grad():
        hs = blocks.prefix(images, depth)
    chain = stack.chain(hs[depth], depth)
    parts = {"image": relative_mse(chain[0], images)}
    loss = weights.resync_image * parts["image"]
    if weights.resync_cycle:
        cycle = [relative_mse(blocks.block(k, chain[k - 1]), hs[k]) for k in range(1, depth + 1)]
        parts["cycle"] = torch.stack(cycle).mean()
        loss = loss + weights.resync_cycle * parts["cycle"]
    return loss, parts


def naive_loss(
    blocks: ClassifierBlocks, stack: InverterStack, images: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """The baseline: the whole stack trained end to end on the image alone."""
    with torch.no_grad():
        features = blocks(images)
    image = relative_mse(stack(features), images)
    return image, {"image": image}


def phase_loss(
    phase: Phase,
    blocks: ClassifierBlocks,
    stack: InverterStack,
    images: Tensor,
    weights: LossWeights,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss of one training step in ``phase``."""
    if phase.name == "blockwise":
        if phase.block is None:
            raise InversionError("A blockwise phase names the block it trains; this one has none.")
        return blockwise_loss(blocks, stack, phase.block, images, weights)
    if phase.name == "resync":
        return resync_loss(blocks, stack, images, weights)
    return naive_loss(blocks, stack, images)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_stack(
    blocks: ClassifierBlocks,
    stack: InverterStack,
    schedule: Schedule,
    weights: LossWeights,
    batch: Callable[[int], Tensor],
    progress: bool = False,
) -> dict[str, Any]:
    """Run ``schedule`` in a plain loop; ``batch(step)`` gives the synthetic images.

    Returns:
        ``{"seconds": wall time}``; the stack is trained in place.
    """
    import time

    optimizers = build_optimizers(stack, schedule)
    stack.train()
    steps = range(schedule.total)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"{schedule.method} inverter", file=sys.stderr, leave=False)
    start = time.perf_counter()
    for step in steps:
        phase = schedule.at(step)
        optimizer = optimizers[phase.optimizer]
        set_lr(optimizer, phase.lr)
        loss, _ = phase_loss(phase, blocks, stack, batch(step), weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    stack.eval()
    return {"seconds": time.perf_counter() - start}
