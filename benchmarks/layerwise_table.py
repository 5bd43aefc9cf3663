"""The layer-wise inversion table of the embedded digits benchmark, its claims and ablations.

Target ``digits:resnet`` cut after the stem and each of its three stages. For each kind of
synthetic training data (smooth, Gaussian and uniform noise, and images synthesised from
the target by DeepInversion), one inverter stack is trained block by block (with the
cycle term), then re-synced end to end from each depth d ("layerwise"); "blockwise" is
the stack's first d blocks before the re-sync. The naive baseline is a decoder of the
same architecture trained end to end, from each depth, on the same data, with as many
steps as each block of the layer-wise stack gets (blockwise + resync). Every inverter
sees only synthetic images; scores are on the 360 real test digits, which none saw:
PSNR, SSIM, and agreement (the target, and the independent digits:cnn, classify the
reconstruction as they classify the original).

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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor

from benchmarks.cells import cached_cell, cached_tensors, source_digest, zoo_keys
from benchmarks.intervals import SEEDS, estimate, paired_difference, verdict
from benchmarks.table_cli import run_table_command
from inversion import build_classifier
from inversion.class_inversion import ClassInverter, recipe_from
from inversion.data.digits import load_digits_split
from inversion.data.noise import NoiseKind
from inversion.data.synthesised import read_synthesised_folder, write_manifest, write_png
from inversion.layerwise import BlockOptions, InverterStack, LossWeights, Schedule, train_stack
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
# To fit the cold rebuild in 25 minutes on 2 cores (docs/layerwise.md): the main table
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

    def fields(self) -> dict[str, Any]:
        """The cell's fields: the recipe, its layers, its data and the zoo model's recipe."""
        synthesised = self.source == "synthesised"
        return {
            **dataclasses.asdict(self),
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
        plan = Schedule(recipe.depth, method="naive", naive_steps=recipe.naive_steps)
        state, seconds = _cached("naive", recipe, lambda: _train(recipe, plan, None))
    else:
        full = dataclasses.replace(recipe, depth=recipe.stack_depth, resync_steps=0)
        plan = Schedule(recipe.stack_depth, blockwise_steps=recipe.block_steps, resync_steps=0)
        state, seconds = _cached("blockwise", full, lambda: _train(full, plan, None))
        seconds *= recipe.depth / recipe.stack_depth  # this depth's share
        if resync:
            plan = Schedule(recipe.depth, blockwise_steps=0, resync_steps=recipe.resync_steps)
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
def _test_digits() -> Tensor:
    return load_digits_split("test")[0]


@functools.cache
@torch.no_grad()
def _features(target: str, depth: int) -> Tensor:
    return _blocks(depth, target)(_test_digits())


@functools.cache
@torch.no_grad()
def _classes(classifier: str) -> Tensor:
    return _classifier(classifier)(_test_digits()).argmax(1)


@torch.no_grad()
def evaluate(stack: InverterStack, depth: int, target_name: str = TARGET) -> dict[str, float]:
    """Invert the real test digits from ``depth``: PSNR, SSIM, agreement (target, verifier).

    Agreement: the fraction of reconstructions a classifier puts in the class it gives
    the original.
    """
    images = _test_digits()
    recon = stack(_features(target_name, depth), depth).clamp(0, 1)

    def agree(name: str) -> float:
        return float((_classifier(name)(recon).argmax(1) == _classes(name)).float().mean())

    return {
        "psnr": float(psnr(recon, images).mean()),
        "ssim": float(ssim(recon, images).mean()),
        "agree": agree(target_name),
        "agree_verifier": agree(VERIFIER),
    }


def score(source: str, method: str, depth: int, seed: int, **overrides) -> dict[str, float]:
    """One cell at one seed: ``method`` trained on ``source``, scored from ``depth`` (cached).

    ``blockwise``: the first ``depth`` blocks of one blockwise-trained stack; ``layerwise``:
    those re-synced from ``depth``; ``naive``: one decoder per depth. Adds ``seconds``, the
    training time (a blockwise stack's time shared by its depths).
    """
    recipe_method = "naive" if method == "naive" else "layerwise"
    recipe = Recipe(source, recipe_method, depth, seed=seed, **overrides)
    fields = {"scores": method, **recipe.fields(), "verifier": zoo_keys([VERIFIER])}

    def compute() -> dict[str, float]:
        stack, seconds = trained(recipe, resync=method == "layerwise")
        return {**evaluate(stack, depth, recipe.target), "seconds": seconds}

    return cached_cell(TABLE, fields, compute, CODE + SCORING_CODE)


def run(
    source: str, method: str, depths: Sequence[int] = MAIN_DEPTHS, seed: int = 0, **overrides
) -> dict[int, dict[str, float]]:
    """Scores of ``method`` trained on ``source`` at one seed, for each depth."""
    return {depth: score(source, method, depth, seed, **overrides) for depth in depths}


Runs = dict[int, list[dict[str, float]]]  # depth -> the metrics at each seed


def runs(source: str, method: str, depths: Sequence[int], **overrides) -> Runs:
    """``method`` on ``source`` over :data:`SEEDS`, for each depth."""
    by_seed = [run(source, method, depths, seed, **overrides) for seed in SEEDS]
    return {depth: [scores[depth] for scores in by_seed] for depth in depths}


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
# block and 300 re-sync steps, and the naive decoder at about the layer-wise training time
# (1,100 steps), as in the earlier single-seed table.
DEEP_DEPTHS = (10,)  # after stage3.2: 19 convolutions
DEEP: dict[str, Any] = {
    "target": DEEP_TARGET,
    "stack_depth": 10,
    "block_steps": 300,
    "resync_steps": 300,
}
DEEP_NAIVE_STEPS = 1100
DEEP_NAIVE = {**DEEP, "naive_steps": DEEP_NAIVE_STEPS}  # about the layer-wise time
DEEP_METRICS = (("psnr", 1), ("agree", 2), ("agree_verifier", 2))


def deep_rows() -> dict[str, Runs]:
    """Runs of each row of the deep table (smooth noise): ``{row: {depth: cell}}``."""
    return {
        "layerwise": runs("smooth", "layerwise", DEEP_DEPTHS, **DEEP),
        "blockwise": runs("smooth", "blockwise", DEEP_DEPTHS, **DEEP),
        f"naive, {DEEP_NAIVE_STEPS} steps": runs("smooth", "naive", DEEP_DEPTHS, **DEEP_NAIVE),
    }


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
        for other in (f"naive, {DEEP_NAIVE_STEPS} steps", "blockwise"):
            metrics = {**CLAIM_METRICS, "agree_verifier": ("agreement of digits:cnn", 3)}
            for metric, (title, _) in metrics.items():
                context = f"deep target from `{layer}`, {title}"
                name = other.split(",")[0]
                lines.append(
                    _claim(context, "layerwise", name, mine, deep[other][depth], metric, title)
                )
    return lines


def _grids(source: str, depths, target: str, overrides: dict[str, dict]) -> list[torch.Tensor]:
    """One depth grid per method (``overrides``: method -> recipe fields) of 10 test digits."""
    from inversion.visual import depth_grid

    images, _ = grid_digits()
    return [
        depth_grid(images, reconstructions(images, source, depths, target, method, fields), 2)
        for method, fields in overrides.items()
    ]


def grid_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 10 test digits of the depth grids (evenly spaced in the split) and their labels."""
    images, labels = load_digits_split("test")
    step = len(images) // 10
    return images[::step][:10], labels[::step][:10]


def reconstructions(
    images: torch.Tensor, source: str, depths, target: str, method: str, fields: dict
) -> list[torch.Tensor]:
    """``images`` reconstructed from each depth by the (cached, seed 0) inverters of a method."""
    by_depth = []
    for depth in depths:
        stack, _ = trained(Recipe(source, method, depth, seed=SEEDS[0], **fields))
        with torch.no_grad():
            by_depth.append(stack(_blocks(depth, target)(images), depth).clamp(0, 1))
    return by_depth


def write_deep_grid() -> Path:
    """Original | reconstruction from the deep target's last stage (PNG, seed 0).

    Layer-wise rows on the left, naive (about the same training time) on the right.
    """
    from torchvision.utils import save_image

    grids = _grids("smooth", DEEP_DEPTHS, DEEP_TARGET, {"layerwise": DEEP, "naive": DEEP_NAIVE})
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
    main, ablation, deep = main_rows(), ablation_rows(), deep_rows()
    for source in FULL_SOURCES:
        write_grids(source)
    write_deep_grid()
    minutes = (time.perf_counter() - start) / 60
    cpu_minutes = (time.process_time() - cpu) / 60
    return (
        "Each cell **PSNR (dB) / SSIM / agreement of the target**, mean ± 95% interval over "
        f"{len(SEEDS)} seeds:\n\n"
        + main_table(main)
        + "\n\nAblation of the default inverse block and loss (one stack of three blocks):\n\n"
        + ablation_table(ablation)
        + "\n\nThe deep target `digits:resnet-deep`, cut after each of its ten blocks; each "
        "cell **PSNR (dB) / agreement of the target / agreement of digits:cnn**:\n\n"
        + deep_table(deep)
        + f"\n\nWhat the intervals allow (paired over the {len(SEEDS)} seeds):\n\n"
        + "\n".join(claims(main, ablation, deep))
        + f"\n\n(This run: {minutes:.0f} min, {cpu_minutes:.0f} CPU-minutes, "
        f"{torch.get_num_threads()} threads; short when the cells come from the cache.)"
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
