"""The layer-wise inversion table of the embedded digits benchmark, its claims and ablations.

Target ``digits:resnet`` cut after the stem and each of its three stages. For each kind of
synthetic training data (smooth, Gaussian and uniform noise, and images synthesised from
the target by DeepInversion), one inverter stack is trained block by block (with the
cycle term), then re-synced end to end from each depth d ("layerwise"); "blockwise" is
the stack's first d blocks before the re-sync. The naive baseline is a decoder of the
same architecture trained end to end, from each depth, on the same data, at equal
compute: as many steps as fit the floating-point operations of the layer-wise inverter
at that depth (its blocks' blockwise steps and its re-sync; one step of each phase
counted by :mod:`benchmarks.compute`, :func:`equal_compute_steps`). Every inverter
sees only synthetic images; scores are on the 360 real test digits, which none saw:
PSNR, SSIM, and agreement (the target, and the independent digits:cnn, classify the
reconstruction as they classify the original).

Learning rates (issue 14): each default (blockwise and naive 1e-3, re-sync 3e-4) times
0.5, 1 and 2, chosen by PSNR on the digits validation split at :data:`TUNING_SEED`, a
seed no table cell uses (:func:`tuned_lrs`): per full training source, the blockwise lr
of the stack, then the re-sync lr and the naive lr per depth. The white noises, the
ablation and the deep target use those tuned on smooth noise.

Every cell is a mean over the seeds of :data:`benchmarks.intervals.SEEDS` with its 95%
interval; the seed sets the inverter's initialisation and the synthetic data drawn for
training (the noise, or the order of the synthesised images, which are one fixed set).
A claim "A beats B" is made only where the interval of the paired difference over
seeds excludes zero (:func:`claims`). Each trained stack is cached per recipe and seed
(:func:`benchmarks.cells.cached_tensors`), and its scores per depth
(:func:`benchmarks.cells.cached_cell`), under ``<cache>/tables/layerwise/``, so the
table builds up over runs and the slow tests score cached cells.

    python -m benchmarks.layerwise_table            # prints the tables, writes the grids
    python -m benchmarks.update_readme layerwise    # writes them into docs/layerwise.md
    python -m benchmarks.layerwise_table --figures  # figures(): docs/images/layerwise_depths.png

``--figures`` writes the depth grid with named rows (the originals, then the
reconstructions from each layer by the layer-wise and the naive inverters trained on
smooth noise, seed 0; a column per test digit) from the cached stacks; the unlabelled
strips of ``docs/layerwise/`` stay where the docs show them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor

from benchmarks import sweep
from benchmarks.cells import cached_cell, cached_tensors, source_digest, zoo_keys
from benchmarks.compute import step_flops, steps_within
from benchmarks.intervals import SEEDS, estimate, paired_difference, verdict
from benchmarks.table_cli import run_table_command
from inversion import build_classifier
from inversion.class_inversion import ClassInverter, recipe_from
from inversion.data.digits import load_digits_split
from inversion.data.noise import NoiseKind
from inversion.data.synthesised import read_synthesised_folder, write_manifest, write_png
from inversion.layerwise import (
    BlockOptions,
    InverterStack,
    LossWeights,
    Phase,
    Schedule,
    phase_loss,
    train_stack,
)
from inversion.metrics.reconstruction import psnr, ssim
from inversion.models.classifier import ImageClassifier
from inversion.models.split import split_classifier
from inversion.paths import cache_dir, file_lock
from model_inversion.datamodules.image_folder import ImageFolderDataset
from model_inversion.datamodules.layerwise import FolderBatches, NoiseBatches

TABLE = "layerwise"
TARGET = "digits:resnet"
DEEP_TARGET = "digits:resnet-deep"  # three residual blocks per stage, cut after every block
VERIFIER = "digits:cnn"
CUTS = {
    TARGET: ("stem", "stage1", "stage2", "stage3", "penultimate"),
    DEEP_TARGET: ("stem", *(f"stage{s}.{b}" for s in (1, 2, 3) for b in range(3))),
}
LAYERS = CUTS[TARGET]
SOURCES = ("smooth", "gaussian", "uniform", "synthesised")
METHODS = ("layerwise", "blockwise", "naive")
# The code the trained stacks depend on (its digest enters every cell's key).
CODE = [
    "inversion/layerwise",
    "inversion/models/split.py",
    "inversion/data/noise.py",
    "inversion/seeds.py",
    "model_inversion/datamodules/layerwise.py",
    "model_inversion/datamodules/noise.py",
    "model_inversion/datamodules/image_folder.py",
]
SCORING_CODE = ["inversion/metrics/reconstruction.py"]
# To fit the cold rebuild in the budget (docs/layerwise.md): the main table
# inverts from the stem to stage3 (the pooled penultimate vector inverts at chance: the
# earlier single-seed table), and white noise is trained layer-wise only, to stage2
# (deeper, the earlier table's inverters agreed at chance).
MAIN_DEPTHS = (1, 2, 3, 4)
WHITE_DEPTHS = (1, 2, 3)
FULL_SOURCES = ("smooth", "synthesised")  # every inverter; the white noises layer-wise only
CHANCE = 0.1  # ten classes
# Synthesised training images: DeepInversion of the target, 32 per class (one fixed set).
SYNTHESIS: dict[str, Any] = {
    "recipe": "deepinversion",
    "options": {"low_res_steps": 180, "steps_per_stage": 100, "warmup_steps": 20, "flip": False},
    "per_class": 32,
    "seed": 0,
}
README_DIR = Path(__file__).resolve().parents[1] / "docs" / "layerwise"
# The learning-rate sweep (issue 14): each default times each factor, chosen by PSNR on the
# digits validation split at a seed no table cell uses (:func:`tuned_lrs`).
LR = Schedule.lr  # 1e-3: the blockwise phase and the naive decoder
RESYNC_LR = Schedule.resync_lr  # 3e-4
LR_FACTORS = sweep.FACTORS  # the first grid of the sweep
TUNING_SEED = 100


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One trained inverter (every field enters the cell's key)."""

    source: str = "smooth"
    method: str = "layerwise"  # layerwise (blockwise then resync) or naive
    depth: int = len(MAIN_DEPTHS)
    block: tuple = ()  # BlockOptions overrides, as sorted (key, value) pairs
    weights: tuple = ()  # LossWeights overrides
    block_steps: int = 100
    resync_steps: int = 100
    naive_steps: int = 200
    batch: int = 16
    seed: int = 0
    stack_depth: int = len(MAIN_DEPTHS)  # blocks trained blockwise (shared by the depths below)
    target: str = TARGET  # a key of CUTS
    lr: float = LR  # peak Adam lr of the blockwise phase (layerwise) or of the naive decoder
    resync_lr: float = RESYNC_LR  # peak Adam lr of the re-sync phase

    def fields(self) -> dict[str, Any]:
        """The cell's fields: the recipe, its layers, its data and the zoo model's recipe.

        A learning rate enters only where it is not the default, so the cells of a
        default recipe keep the key they had before the learning rates were fields.
        """
        synthesised = self.source == "synthesised"
        recipe = dataclasses.asdict(self)
        for name, default in (("lr", LR), ("resync_lr", RESYNC_LR)):
            if recipe[name] == default:
                del recipe[name]
        return {
            **recipe,
            "layers": list(CUTS[self.target][: self.depth]),
            "synthesis": synthesis_key(self.target) if synthesised else None,
            "zoo": zoo_keys([self.target]),
        }


def synthesis_key(target: str = TARGET) -> str:
    """Short hash of the synthesised images: the target's zoo recipe, SYNTHESIS, the code."""
    payload = [target, SYNTHESIS, zoo_keys([target]), source_digest(["inversion/class_inversion"])]
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def synthesised_folder(target: str = TARGET) -> Path:
    """DeepInversion images of ``target``, stamped like SaveImages does (cached)."""
    folder = cache_dir() / "layerwise" / f"synthesised-{synthesis_key(target)}"
    if (folder / "synthesised.json").is_file():
        return folder
    with file_lock(folder):
        if (folder / "synthesised.json").is_file():
            return folder
        model = build_classifier(target).freeze()
        recipe = recipe_from(SYNTHESIS["recipe"], SYNTHESIS["options"])
        rng = torch.Generator().manual_seed(SYNTHESIS["seed"])
        inverter = ClassInverter(model, recipe, 32, 1, rng)
        labels = torch.arange(10).repeat_interleave(SYNTHESIS["per_class"])
        files = {}
        for start in range(0, len(labels), 80):
            batch = labels[start : start + 80]
            for i, (image, label) in enumerate(zip(inverter.invert(batch), batch, strict=True)):
                relative = f"{int(label)}/{start + i:05d}.png"
                files[relative] = write_png(image, folder / relative)
        producer = {"module": "ClassInversion", "classifier": target, **SYNTHESIS}
        write_manifest(folder, files, producer)
    return folder


def batches(recipe: Recipe):
    """``step -> images``: the synthetic training data of a recipe (as the DataModule has it)."""
    length = 10**9
    if recipe.source == "synthesised":
        files, labels = read_synthesised_folder(synthesised_folder(recipe.target))
        images = ImageFolderDataset(files, labels, 32, 1, train=False)
        data: FolderBatches | NoiseBatches = FolderBatches(
            images, recipe.batch, length, recipe.seed
        )
    else:
        kind = cast(NoiseKind, recipe.source)  # every source but synthesised is a noise kind
        data = NoiseBatches(kind, (1, 32, 32), recipe.batch, length, recipe.seed)
    return lambda step: data[step][0]


def _blocks(depth: int, target: str = TARGET):
    cuts = CUTS[target][:depth]
    return split_classifier(_classifier(target), cuts, (1, 32, 32))


def _train(recipe: Recipe, schedule: Schedule, init: dict | None) -> dict[str, Tensor]:
    torch.manual_seed(recipe.seed)
    blocks = _blocks(recipe.depth, recipe.target)
    stack = InverterStack(blocks.shapes, BlockOptions.from_dict(dict(recipe.block)))
    if init is not None:
        stack.load_state_dict(init, strict=False)
    seconds = train_stack(
        blocks,
        stack,
        schedule,
        LossWeights.from_dict(dict(recipe.weights)),
        batches(recipe),
        progress=True,
    )["seconds"]
    state = {f"state/{name}": value for name, value in stack.state_dict().items()}
    return {**state, "seconds": torch.tensor(seconds)}


def _cached(phase: str, recipe: Recipe, build) -> tuple[dict[str, Tensor], float]:
    """The state dict and training seconds of one phase of ``recipe`` (a table cell)."""
    result = cached_tensors(TABLE, {"phase": phase, **recipe.fields()}, build, CODE)
    state = {k.removeprefix("state/"): v for k, v in result.items() if k.startswith("state/")}
    return state, float(result["seconds"])


def trained(recipe: Recipe, resync: bool = True) -> tuple[InverterStack, float]:
    """The trained stack of ``recipe`` (cached) and its training seconds.

    ``layerwise``: blockwise training of every block (shared by all depths: the first
    ``depth`` blocks of one stack), then (``resync``) the re-sync from ``depth``.
    ``naive``: a stack of ``depth`` blocks trained end to end.
    """
    options = BlockOptions.from_dict(dict(recipe.block))
    if recipe.method == "naive":
        plan = Schedule(recipe.depth, method="naive", naive_steps=recipe.naive_steps, lr=recipe.lr)
        state, seconds = _cached("naive", recipe, lambda: _train(recipe, plan, None))
    else:
        full = dataclasses.replace(
            recipe, depth=recipe.stack_depth, resync_steps=0, resync_lr=RESYNC_LR
        )
        plan = Schedule(
            recipe.stack_depth, blockwise_steps=recipe.block_steps, resync_steps=0, lr=recipe.lr
        )
        state, seconds = _cached("blockwise", full, lambda: _train(full, plan, None))
        seconds *= recipe.depth / recipe.stack_depth  # this depth's share
        if resync:
            plan = Schedule(
                recipe.depth,
                blockwise_steps=0,
                resync_steps=recipe.resync_steps,
                resync_lr=recipe.resync_lr,
            )
            init = state
            state, resync_seconds = _cached("resync", recipe, lambda: _train(recipe, plan, init))
            seconds += resync_seconds
    stack = InverterStack(_blocks(recipe.depth, recipe.target).shapes, options)
    stack.load_state_dict(state, strict=False)  # the first depth blocks
    return stack.eval(), seconds


@functools.cache
def _classifier(name: str) -> ImageClassifier:
    with torch.enable_grad():  # a zoo model trains on first use, perhaps under no_grad
        return build_classifier(name).freeze()


@functools.cache
def _digits(split: str = "test") -> Tensor:
    return load_digits_split(split)[0]


@functools.cache
@torch.no_grad()
def _features(target: str, depth: int, split: str = "test") -> Tensor:
    return _blocks(depth, target)(_digits(split))


@functools.cache
@torch.no_grad()
def _classes(classifier: str, split: str = "test") -> Tensor:
    return _classifier(classifier)(_digits(split)).argmax(1)


@torch.no_grad()
def evaluate(
    stack: InverterStack, depth: int, target_name: str = TARGET, split: str = "test"
) -> dict[str, float]:
    """Invert the real digits of ``split`` (the table: test; the lr sweep: val) from
    ``depth``: PSNR, SSIM, agreement (target, verifier).

    Agreement: the fraction of reconstructions a classifier puts in the class it gives
    the original.
    """
    images = _digits(split)
    recon = stack(_features(target_name, depth, split), depth).clamp(0, 1)

    def agree(name: str) -> float:
        correct = _classifier(name)(recon).argmax(1) == _classes(name, split)
        return float(correct.float().mean())

    return {
        "psnr": float(psnr(recon, images).mean()),
        "ssim": float(ssim(recon, images).mean()),
        "agree": agree(target_name),
        "agree_verifier": agree(VERIFIER),
    }


def recipe_of(source: str, method: str, depth: int, seed: int, **overrides) -> Recipe:
    """The recipe that trains ``method``'s inverter for ``depth``.

    A learning rate the method does not use is the default (so it does not key the cell);
    the naive decoder gets the layer-wise compute at its depth (:func:`equal_compute_steps`)
    unless ``naive_steps`` is given.
    """
    recipe_method = "naive" if method == "naive" else "layerwise"
    recipe = Recipe(source, recipe_method, depth, seed=seed, **overrides)
    if method != "layerwise":
        recipe = dataclasses.replace(recipe, resync_lr=RESYNC_LR)
    if method == "naive" and "naive_steps" not in overrides:
        recipe = dataclasses.replace(recipe, naive_steps=equal_compute_steps(recipe))
    return recipe


def score(
    source: str, method: str, depth: int, seed: int, split: str = "test", **overrides
) -> dict[str, float]:
    """One cell at one seed: ``method`` trained on ``source``, scored from ``depth`` (cached).

    ``blockwise``: the first ``depth`` blocks of one blockwise-trained stack; ``layerwise``:
    those re-synced from ``depth``; ``naive``: one decoder per depth, at the layer-wise
    compute (:func:`recipe_of`). Scored on the digits test split (the lr sweep: ``val``).
    Adds ``seconds``, the training time (a blockwise stack's time shared by its depths).
    """
    recipe = recipe_of(source, method, depth, seed, **overrides)
    fields = {"scores": method, **recipe.fields(), "verifier": zoo_keys([VERIFIER])}
    if split != "test":
        fields["split"] = split

    def compute() -> dict[str, float]:
        stack, seconds = trained(recipe, resync=method == "layerwise")
        return {**evaluate(stack, depth, recipe.target, split), "seconds": seconds}

    return cached_cell(TABLE, fields, compute, CODE + SCORING_CODE)


# Compute: floating-point operations of one training step of each phase (benchmarks.compute).


@functools.cache
def phase_flops(
    target: str,
    depth: int,
    phase: str,
    block: int | None,
    batch: int,
    options: tuple,
    weights: tuple,
) -> int:
    """Operations of one training step of ``phase`` (``blockwise`` of ``block``, ``resync``
    or ``naive``) of a stack of ``depth`` blocks of ``target``, on a throwaway stack.

    The step is the training loop's (:func:`inversion.layerwise.phase_loss` then the
    backward pass): the frozen target's prefix forward, the inverse blocks forward and
    backward, and the cycle terms through the target's blocks (forward and input gradients).
    """
    blocks = _blocks(depth, target)
    with torch.random.fork_rng(), torch.enable_grad():
        stack = InverterStack(blocks.shapes, BlockOptions.from_dict(dict(options))).train()
        images = torch.rand(batch, *blocks.shapes[0])
        loss_weights = LossWeights.from_dict(dict(weights))
        step_phase = Phase(phase, block, 0, 1, 0, 0.0)

        def step() -> None:
            loss, _ = phase_loss(step_phase, blocks, stack, images, loss_weights)
            loss.backward()

        return step_flops(step)


def _flops(recipe: Recipe, phase: str, depth: int, block: int | None = None) -> int:
    return phase_flops(
        recipe.target, depth, phase, block, recipe.batch, recipe.block, recipe.weights
    )


def blockwise_flops(recipe: Recipe) -> int:
    """Training operations of the first ``recipe.depth`` blocks of the blockwise stack."""
    return sum(
        recipe.block_steps * _flops(recipe, "blockwise", block, block)
        for block in range(1, recipe.depth + 1)
    )


def layerwise_flops(recipe: Recipe) -> int:
    """The layer-wise inverter at ``recipe.depth``: its blocks' blockwise steps and the re-sync."""
    return blockwise_flops(recipe) + recipe.resync_steps * _flops(recipe, "resync", recipe.depth)


def naive_step_flops(recipe: Recipe) -> int:
    """One step of the naive decoder at ``recipe.depth``."""
    return _flops(recipe, "naive", recipe.depth)


def equal_compute_steps(recipe: Recipe) -> int:
    """The naive decoder's steps at ``recipe.depth``: as many as fit the layer-wise compute."""
    return steps_within(layerwise_flops(recipe), naive_step_flops(recipe))


def compute_table(depths: Sequence[int], layers: Sequence[str], **overrides) -> str:
    """GFLOPs of training each inverter (and the naive decoder's steps), one column per depth."""
    recipes = [recipe_of("smooth", "naive", d, SEEDS[0], **overrides) for d in depths]
    header = "| training compute | " + " | ".join(f"`{layers[d - 1]}`" for d in depths) + " |"
    rows = {
        "layerwise (GFLOPs)": [layerwise_flops(r) / 1e9 for r in recipes],
        "blockwise (GFLOPs)": [blockwise_flops(r) / 1e9 for r in recipes],
        "naive (GFLOPs)": [r.naive_steps * naive_step_flops(r) / 1e9 for r in recipes],
    }
    lines = [header, "|---|" + "---:|" * len(depths)]
    lines += [
        f"| {name} | " + " | ".join(f"{v:.1f}" for v in vs) + " |" for name, vs in rows.items()
    ]
    steps = " | ".join(str(r.naive_steps) for r in recipes)
    lines.append(f"| naive steps | {steps} |")
    return "\n".join(lines)


# The learning-rate sweep.


@dataclasses.dataclass(frozen=True)
class TunedLrs:
    """The learning rates the sweep chose for one kind of training data.

    Attributes:
        lr: The blockwise phase's (one stack serves every depth).
        resync: The re-sync phase's, per depth.
        naive: The naive decoder's, per depth.
        at_limit: The picks still on the widened grid's edge (the best may lie further
            out), named like ``re-sync from `stem```.
    """

    lr: float
    resync: dict[int, float]
    naive: dict[int, float]
    at_limit: tuple[str, ...] = ()


def validation_psnr(source: str, method: str, depth: int, **overrides) -> float:
    """PSNR on the digits validation split of an inverter trained at :data:`TUNING_SEED`."""
    return score(source, method, depth, TUNING_SEED, split="val", **overrides)["psnr"]


@functools.cache
def tuned_lrs(source: str) -> TunedLrs:
    """The sweep on ``source`` (one of :data:`FULL_SOURCES`): each default lr times each of
    :data:`LR_FACTORS`, widened at the grid's edges (:mod:`benchmarks.sweep`), picked by
    PSNR on the digits validation split at :data:`TUNING_SEED`.

    (a) The blockwise lr, by the stack's mean validation PSNR over :data:`MAIN_DEPTHS`;
    (b) the re-sync lr per depth, on the stack of (a); (c) the naive lr per depth, at its
    equal-compute steps. The inverters are cached like the table's cells.
    """

    def stack_psnr(lr: float) -> float:
        return statistics.mean(validation_psnr(source, "blockwise", d, lr=lr) for d in MAIN_DEPTHS)

    at_limit: list[str] = []

    def tune(name: str, psnr: Callable[[float], float], default: float) -> float:
        scores = sweep.sweep(psnr, default, LR_FACTORS)
        if sweep.at_edge(scores, default):
            at_limit.append(name)
        return sweep.pick(scores, default)

    lr = tune("blockwise (the stack)", stack_psnr, LR)
    resync, naive = {}, {}
    for d in MAIN_DEPTHS:

        def resync_psnr(rate: float, depth: int = d) -> float:
            return validation_psnr(source, "layerwise", depth, lr=lr, resync_lr=rate)

        def naive_psnr(rate: float, depth: int = d) -> float:
            return validation_psnr(source, "naive", depth, lr=rate)

        where = f"from `{LAYERS[d - 1]}`"
        resync[d] = tune(f"re-sync {where}", resync_psnr, RESYNC_LR)
        naive[d] = tune(f"naive {where}", naive_psnr, LR)
    return TunedLrs(lr, resync, naive, tuple(at_limit))


def lr_overrides(source: str, method: str, depth: int) -> dict[str, float]:
    """The tuned learning rates of ``method`` at ``depth`` (tuned on ``source``, at the
    deepest tuned depth where ``depth`` is deeper)."""
    tuned = tuned_lrs(source)
    at = min(depth, max(MAIN_DEPTHS))
    if method == "naive":
        return {"lr": tuned.naive[at]}
    if method == "blockwise":
        return {"lr": tuned.lr}
    return {"lr": tuned.lr, "resync_lr": tuned.resync[at]}


def lr_table() -> str:
    """The learning rates the sweep chose, one row per tuned kind of training data."""
    depths = " / ".join(f"`{LAYERS[d - 1]}`" for d in MAIN_DEPTHS)
    lines = [
        f"| tuned on | blockwise lr (the stack) | re-sync lr from {depths} "
        f"| naive lr from {depths} |",
        "|---|---:|---:|---:|",
    ]
    for source in FULL_SOURCES:
        tuned = tuned_lrs(source)
        resync = " / ".join(f"{tuned.resync[d]:g}" for d in MAIN_DEPTHS)
        naive = " / ".join(f"{tuned.naive[d]:g}" for d in MAIN_DEPTHS)
        lines.append(f"| {source} | {tuned.lr:g} | {resync} | {naive} |")
    limits = [
        f"{source}: {', '.join(tuned_lrs(source).at_limit)}"
        for source in FULL_SOURCES
        if tuned_lrs(source).at_limit
    ]
    lines += ["", "At the widened grid's limit (the best rate may lie further out): "
              + ("; ".join(limits) or "none") + "."]  # fmt: skip
    return "\n".join(lines)


Runs = dict[int, list[dict[str, float]]]  # depth -> the metrics at each seed


def runs(source: str, method: str, depths: Sequence[int], **overrides) -> Runs:
    """``method`` on ``source`` over :data:`SEEDS`, for each depth, at the learning rates
    tuned on ``source`` (smooth noise where it is not one of :data:`FULL_SOURCES`)."""
    tuned_on = source if source in FULL_SOURCES else "smooth"
    by_depth: Runs = {}
    for depth in depths:
        options: dict[str, Any] = {**lr_overrides(tuned_on, method, depth), **overrides}
        by_depth[depth] = [score(source, method, depth, seed, **options) for seed in SEEDS]
    return by_depth


def values(cell: list[dict[str, float]], metric: str) -> list[float]:
    """A metric at each seed of a cell."""
    return [scores[metric] for scores in cell]


def _format(cell: list[dict[str, float]], metrics: Sequence[tuple[str, int]]) -> str:
    return " / ".join(estimate(values(cell, name)).format(digits) for name, digits in metrics)


MAIN_METRICS = (("psnr", 1), ("ssim", 2), ("agree", 2))


def main_rows() -> dict[tuple[str, str], Runs]:
    """``(source, method) -> runs`` of the main table."""
    rows = {}
    for source in SOURCES:
        full = source in FULL_SOURCES
        for method in METHODS if full else ("layerwise",):
            rows[source, method] = runs(source, method, MAIN_DEPTHS if full else WHITE_DEPTHS)
    return rows


def main_table(rows: dict[tuple[str, str], Runs]) -> str:
    """Sources x methods, one column per depth (``—``: not trained, to fit the budget)."""
    header = "| training data | inverter | " + " | ".join(f"`{LAYERS[d - 1]}`" for d in MAIN_DEPTHS)
    lines = [header + " |", "|---|---|" + "---:|" * len(MAIN_DEPTHS)]
    for (source, method), cells in rows.items():
        text = [_format(cells[d], MAIN_METRICS) if d in cells else "—" for d in MAIN_DEPTHS]
        lines.append(f"| {source} | {method} | " + " | ".join(text) + " |")
    return "\n".join(lines)


ABLATION_DEPTH = 3
ABLATIONS: dict[str, dict[str, Any]] = {  # Recipe overrides
    "default (batch norm, cycle terms)": {},
    "no cycle terms": {"weights": (("cycle", 0.0), ("resync_cycle", 0.0))},
    "no normalisation": {"block": (("norm", "none"),)},
    "group norm": {"block": (("norm", "group"),)},
}
DEFAULT = next(iter(ABLATIONS))


def ablation_rows() -> dict[str, dict[str, list[dict[str, float]]]]:
    """``variant -> {"blockwise" | "layerwise": cell}``, smooth noise, from stage2."""
    rows = {}
    for name, overrides in ABLATIONS.items():
        options = {"stack_depth": ABLATION_DEPTH, **overrides}
        rows[name] = {
            method: runs("smooth", method, (ABLATION_DEPTH,), **options)[ABLATION_DEPTH]
            for method in ("blockwise", "layerwise")
        }
    return rows


def ablation_table(rows: dict[str, dict[str, list[dict[str, float]]]]) -> str:
    """The inverse-block normalisation and the cycle terms, inverting from stage2."""
    lines = [
        "| variant (smooth noise, from `stage2`) | blockwise | layerwise (re-synced) "
        "| agreement of digits:cnn (layerwise) |",
        "|---|---:|---:|---:|",
    ]
    for name, cells in rows.items():
        verifier = estimate(values(cells["layerwise"], "agree_verifier")).format(2)
        lines.append(
            f"| {name} | {_format(cells['blockwise'], MAIN_METRICS)} | "
            f"{_format(cells['layerwise'], MAIN_METRICS)} | {verifier} |"
        )
    return "\n".join(lines)


# The deep target: 19 convolutions before the head, cut after every residual block (ten
# blocks); inverted from the end of the last stage only (to fit the budget). 300 steps per
# block and 300 re-sync steps, and the naive decoder at the layer-wise compute (as in the
# main table), at the learning rates tuned on smooth noise from the main table's deepest cut.
DEEP_DEPTHS = (10,)  # after stage3.2: 19 convolutions
DEEP: dict[str, Any] = {
    "target": DEEP_TARGET,
    "stack_depth": 10,
    "block_steps": 300,
    "resync_steps": 300,
}
DEEP_METRICS = (("psnr", 1), ("agree", 2), ("agree_verifier", 2))


def deep_rows() -> dict[str, Runs]:
    """Runs of each row of the deep table (smooth noise): ``{row: {depth: cell}}``."""
    return {method: runs("smooth", method, DEEP_DEPTHS, **DEEP) for method in METHODS}


def deep_table(rows: dict[str, Runs]) -> str:
    """The deep target: PSNR / target agreement / verifier agreement, and train seconds.

    The time is the median over seeds (a blockwise stack's time is its depth's share).
    """
    layers = [CUTS[DEEP_TARGET][d - 1] for d in DEEP_DEPTHS]
    header = "| inverter (smooth noise) | " + " | ".join(f"`{name}`" for name in layers)
    lines = [
        header + " | train time (s), median over seeds |",
        "|---|" + "---:|" * (len(layers) + 1),
    ]
    for name, cells in rows.items():
        text = " | ".join(_format(cells[d], DEEP_METRICS) for d in DEEP_DEPTHS)
        seconds = " / ".join(
            f"{statistics.median(values(cells[d], 'seconds')):.0f}" for d in DEEP_DEPTHS
        )
        lines.append(f"| {name} | {text} | {seconds} |")
    return "\n".join(lines)


CLAIM_METRICS = {"psnr": ("PSNR", 2), "agree": ("agreement", 3)}


def _claim(context: str, a: str, b: str, cell_a, cell_b, metric: str, title: str) -> str:
    digits, unit = (2, " dB") if metric == "psnr" else (3, "")
    diff = paired_difference(values(cell_a, metric), values(cell_b, metric))
    interval = f"{title}, {a} minus {b}: {diff.format(digits)}{unit}"
    return f"- {context}: {verdict(a, b, diff)} ({interval})"


def claims(
    main: dict[tuple[str, str], Runs],
    ablation: dict[str, dict[str, list[dict[str, float]]]],
    deep: dict[str, Runs],
) -> list[str]:
    """What the paired intervals over seeds allow, one line per comparison.

    Main table (smooth noise and synthesised images, each depth): layer-wise against
    naive and against blockwise, in PSNR and agreement, and layer-wise trained on
    synthesised images against smooth noise; white noise: agreement above chance;
    ablation: each variant against the default (layer-wise, from stage2); deep target:
    layer-wise against naive and blockwise.
    """
    lines = []
    for source in FULL_SOURCES:
        for depth in MAIN_DEPTHS:
            for other in ("naive", "blockwise"):
                for metric, (title, _) in CLAIM_METRICS.items():
                    context = f"{source}, from `{LAYERS[depth - 1]}`, {title}"
                    mine, theirs = main[source, "layerwise"][depth], main[source, other][depth]
                    lines.append(_claim(context, "layerwise", other, mine, theirs, metric, title))
    for depth in MAIN_DEPTHS:
        for metric, (title, _) in CLAIM_METRICS.items():
            context = f"layerwise from `{LAYERS[depth - 1]}`, {title}"
            synthesised, smooth = (main[s, "layerwise"][depth] for s in FULL_SOURCES[::-1])
            lines.append(
                _claim(context, "synthesised", "smooth", synthesised, smooth, metric, title)
            )
    for source in SOURCES:
        if source in FULL_SOURCES:
            continue
        for depth in WHITE_DEPTHS:
            above = estimate(
                [v - CHANCE for v in values(main[source, "layerwise"][depth], "agree")]
            )
            lines.append(
                f"- {source} noise, layerwise from `{LAYERS[depth - 1]}`: "
                + (
                    "agreement above chance"
                    if above.low > 0
                    else "agreement not told apart from chance"
                )
                + f" (agreement minus chance: {above.format(3)})"
            )
    default = ablation[DEFAULT]["layerwise"]
    for name, cells in ablation.items():
        if name == DEFAULT:
            continue
        for metric, (title, _) in CLAIM_METRICS.items():
            context = f"ablation from `stage2`, {title}"
            lines.append(
                _claim(context, name, "default", cells["layerwise"], default, metric, title)
            )
    for depth in DEEP_DEPTHS:
        layer = CUTS[DEEP_TARGET][depth - 1]
        mine = deep["layerwise"][depth]
        for other in ("naive", "blockwise"):
            metrics = {**CLAIM_METRICS, "agree_verifier": ("agreement of digits:cnn", 3)}
            for metric, (title, _) in metrics.items():
                context = f"deep target from `{layer}`, {title}"
                lines.append(
                    _claim(context, "layerwise", other, mine, deep[other][depth], metric, title)
                )
    return lines


def _grids(source: str, depths, target: str, methods: dict[str, dict]) -> list[torch.Tensor]:
    """One depth grid per method (``methods``: method -> recipe fields) of 10 test digits."""
    from inversion.visual import depth_grid

    images, _ = grid_digits()
    return [
        depth_grid(images, reconstructions(images, source, depths, target, method, fields), 2)
        for method, fields in methods.items()
    ]


def grid_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 10 test digits of the depth grids (evenly spaced in the split) and their labels."""
    images, labels = load_digits_split("test")
    step = len(images) // 10
    return images[::step][:10], labels[::step][:10]


def reconstructions(
    images: torch.Tensor, source: str, depths, target: str, method: str, fields: dict
) -> list[torch.Tensor]:
    """``images`` reconstructed from each depth by the (cached, seed 0) inverters of a method
    (``layerwise`` or ``naive``, at the table's learning rates and compute)."""
    by_depth = []
    for depth in depths:
        lrs = lr_overrides(source, method, depth)
        stack, _ = trained(recipe_of(source, method, depth, SEEDS[0], **lrs, **fields))
        with torch.no_grad():
            by_depth.append(stack(_blocks(depth, target)(images), depth).clamp(0, 1))
    return by_depth


def write_deep_grid() -> Path:
    """Original | reconstruction from the deep target's last stage (PNG, seed 0).

    Layer-wise rows on the left, naive (the same compute) on the right.
    """
    from torchvision.utils import save_image

    grids = _grids("smooth", DEEP_DEPTHS, DEEP_TARGET, {"layerwise": DEEP, "naive": DEEP})
    path = README_DIR / "depths_deep.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(grids, dim=2), path, padding=0)
    return path


def write_grids(source: str = "smooth") -> Path:
    """Original | reconstruction from each depth, layer-wise rows above naive rows (PNG)."""
    from torchvision.utils import save_image

    grids = _grids(source, MAIN_DEPTHS, TARGET, {"layerwise": {}, "naive": {}})
    path = README_DIR / f"depths_{source}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(grids, dim=1), path)
    return path


def tables() -> str:
    """The tables and their claims, as the docs show them; writes the grids."""
    start, cpu = time.perf_counter(), time.process_time()
    lrs = lr_table()  # the sweep first: every row runs at its tuned learning rates
    main, ablation, deep = main_rows(), ablation_rows(), deep_rows()
    for source in FULL_SOURCES:
        write_grids(source)
    write_deep_grid()
    minutes = (time.perf_counter() - start) / 60
    cpu_minutes = (time.process_time() - cpu) / 60
    print(  # on the terminal, not the page: a warm run takes no time
        f"layer-wise tables: {minutes:.0f} min, {cpu_minutes:.0f} CPU-minutes, "
        f"{torch.get_num_threads()} threads (short when the cells come from the cache)",
        file=sys.stderr,
    )
    return (
        "Each cell **PSNR (dB) / SSIM / agreement of the target**, mean ± 95% interval over "
        f"{len(SEEDS)} seeds:\n\n"
        + main_table(main)
        + "\n\nTraining compute of each inverter (the naive decoder gets as many steps as fit "
        "the layer-wise compute at its depth):\n\n"
        + compute_table(MAIN_DEPTHS, LAYERS)
        + "\n\nLearning rates, each default (blockwise and naive "
        f"{LR:g}, re-sync {RESYNC_LR:g}) times "
        + ", ".join(f"{f:g}" for f in LR_FACTORS)
        + " (the grid widens by a factor of 2 while the best is on its edge, up to "
        f"{sweep.MAX_WIDENINGS} times each way)"
        + f", chosen by PSNR on the digits validation split at seed {TUNING_SEED} (no table "
        "cell's seed); the white noises, the ablation and the deep target use those tuned "
        "on smooth noise (the deep target: from `stage3`):\n\n"
        + lrs
        + "\n\nAblation of the default inverse block and loss (one stack of three blocks):\n\n"
        + ablation_table(ablation)
        + "\n\nThe deep target `digits:resnet-deep`, cut after each of its ten blocks; each "
        "cell **PSNR (dB) / agreement of the target / agreement of digits:cnn**:\n\n"
        + deep_table(deep)
        + "\n\n"
        + compute_table(DEEP_DEPTHS, CUTS[DEEP_TARGET], **DEEP)
        + f"\n\nWhat the intervals allow (paired over the {len(SEEDS)} seeds):\n\n"
        + "\n".join(claims(main, ablation, deep))
    )


FIGURES = Path(__file__).resolve().parents[1] / "docs" / "images"


def figures(folder: Path = FIGURES, source: str = "smooth") -> list[Path]:
    """The depth grid with named rows: originals, then each method's reconstruction by depth.

    The layer-wise (re-synced) and the naive inverters of the main table, trained on
    ``source`` (seed 0); one column per test digit.
    """
    from benchmarks.figures import labelled_grid

    images, labels = grid_digits()
    data = "DeepInversion images" if source == "synthesised" else f"{source} noise"
    rows, titles = [images], ["original"]
    for method, name in (("layerwise", "layer-wise"), ("naive", "naive")):
        rows += reconstructions(images, source, MAIN_DEPTHS, TARGET, method, {})
        titles += [f"{name}, from {LAYERS[depth - 1]}" for depth in MAIN_DEPTHS]
    path = folder / "layerwise_depths.png"
    labelled_grid(
        torch.stack(rows),
        titles,
        [f"class {int(label)}" for label in labels],
        path,
        title=f"Inverting {TARGET} from each depth (inverters trained on {data} only, seed 0)",
    )
    return [path]


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", torch.get_num_threads())))
    run_table_command("layerwise_table", tables, figures)
