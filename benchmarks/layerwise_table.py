"""The layer-wise inversion table of the embedded digits benchmark (README), and its ablation.

Target ``digits:resnet`` cut after the stem, each of its three stages and the penultimate
layer. For each kind of synthetic training data (smooth, Gaussian and uniform noise, and
images synthesised from the target by DeepInversion), one inverter stack is trained
block by block (with the cycle term), then re-synced end to end from the penultimate
layer; each depth d is inverted by the stack's first d blocks, before ("blockwise") and
after ("layerwise") the re-sync. The naive baseline is a decoder of the same
architecture trained end to end, from each depth, on the same data, with as many steps
as each block of the layer-wise stack gets (blockwise + resync). Every inverter sees
only synthetic images; scores are on the 360 real test digits, which none saw: PSNR,
SSIM, and agreement (the target, and the independent digits:cnn, classify the
reconstruction as they classify the original). Trained stacks are cached by recipe hash
(``$INVERSION_CACHE/layerwise/``), so the slow tests reuse them.

    python -m benchmarks.layerwise_table            # prints the tables, writes the grids
    python -m benchmarks.update_readme layerwise    # writes them into README.md
    python -m benchmarks.layerwise_table --figures  # figures(): docs/images/layerwise_depths.png

``--figures`` writes the depth grid with named rows (the originals, then the
reconstructions from each layer by the layer-wise and the naive inverters trained on
smooth noise; a column per test digit) from the cached stacks; the unlabelled strips of
``docs/layerwise/`` stay where the README shows them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, cast

import torch

from benchmarks.table_cli import run_table_command
from inversion import build_classifier
from inversion.class_inversion import ClassInverter, recipe_from
from inversion.data.digits import load_digits_split
from inversion.data.noise import NoiseKind
from inversion.data.synthesised import read_synthesised_folder, write_manifest, write_png
from inversion.layerwise import BlockOptions, InverterStack, LossWeights, Schedule, train_stack
from inversion.metrics.reconstruction import agreement, psnr, ssim
from inversion.models.split import split_classifier
from inversion.paths import cache_dir, cached_torch_file, file_lock
from model_inversion.datamodules.image_folder import ImageFolderDataset
from model_inversion.datamodules.layerwise import FolderBatches, NoiseBatches

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
FORMAT = 1
# Synthesised training images: DeepInversion of the target, 32 per class.
SYNTHESIS: dict[str, Any] = {
    "recipe": "deepinversion",
    "options": {"low_res_steps": 180, "steps_per_stage": 100, "warmup_steps": 20, "flip": False},
    "per_class": 32,
    "seed": 0,
}
README_DIR = Path(__file__).resolve().parents[1] / "docs" / "layerwise"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One trained inverter (every field enters the cache key)."""

    source: str = "smooth"
    method: str = "layerwise"  # layerwise (blockwise then resync) or naive
    depth: int = len(LAYERS)
    block: tuple = ()  # BlockOptions overrides, as sorted (key, value) pairs
    weights: tuple = ()  # LossWeights overrides
    block_steps: int = 100
    resync_steps: int = 100
    naive_steps: int = 200
    batch: int = 16
    seed: int = 0
    stack_depth: int = len(LAYERS)  # blocks trained blockwise (shared by the depths below)
    target: str = TARGET  # a key of CUTS

    def key(self) -> str:
        """Short hash of the recipe, the target, the layers and the synthesis."""
        payload = {
            "format": FORMAT,
            "layers": CUTS[self.target][: self.depth],
            "synthesis": SYNTHESIS if self.source == "synthesised" else None,
            **dataclasses.asdict(self),
        }
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _cached(name: str, build) -> dict:
    return cached_torch_file(cache_dir() / "layerwise" / f"{name}.pt", build)


def synthesised_folder(target: str = TARGET) -> Path:
    """DeepInversion images of ``target``, stamped like SaveImages does (cached)."""
    key = hashlib.sha1(json.dumps([target, SYNTHESIS], sort_keys=True).encode()).hexdigest()[:12]
    folder = cache_dir() / "layerwise" / f"synthesised-{key}"
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
    return split_classifier(build_classifier(target).freeze(), cuts, (1, 32, 32))


def _train(recipe: Recipe, schedule: Schedule, init: dict | None) -> dict:
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
    return {"state_dict": stack.state_dict(), "seconds": seconds}


def trained(recipe: Recipe, resync: bool = True) -> tuple[InverterStack, float]:
    """The trained stack of ``recipe`` (cached) and its training seconds.

    ``layerwise``: blockwise training of every block (shared by all depths: the first
    ``depth`` blocks of one stack), then (``resync``) the re-sync from ``depth``.
    ``naive``: a stack of ``depth`` blocks trained end to end.
    """
    options = BlockOptions.from_dict(dict(recipe.block))
    if recipe.method == "naive":
        plan = Schedule(recipe.depth, method="naive", naive_steps=recipe.naive_steps)
        result = _cached(f"naive-{recipe.key()}", lambda: _train(recipe, plan, None))
        seconds = result["seconds"]
    else:
        full = dataclasses.replace(recipe, depth=recipe.stack_depth, resync_steps=0)
        plan = Schedule(recipe.stack_depth, blockwise_steps=recipe.block_steps, resync_steps=0)
        result = _cached(f"blockwise-{full.key()}", lambda: _train(full, plan, None))
        seconds = result["seconds"] * recipe.depth / recipe.stack_depth  # this depth's share
        if resync:
            plan = Schedule(recipe.depth, blockwise_steps=0, resync_steps=recipe.resync_steps)
            init = result["state_dict"]
            result = _cached(f"resync-{recipe.key()}", lambda: _train(recipe, plan, init))
            seconds += result["seconds"]
    stack = InverterStack(_blocks(recipe.depth, recipe.target).shapes, options)
    stack.load_state_dict(result["state_dict"], strict=False)  # the first depth blocks
    return stack.eval(), seconds


@torch.no_grad()
def evaluate(stack: InverterStack, depth: int, target_name: str = TARGET) -> dict[str, float]:
    """Invert the real test digits from ``depth``: PSNR, SSIM, agreement (target, verifier)."""
    images, _ = load_digits_split("test")
    target = build_classifier(target_name).freeze()
    blocks = _blocks(depth, target_name)
    recon = stack(blocks(images), depth).clamp(0, 1)
    return {
        "psnr": float(psnr(recon, images).mean()),
        "ssim": float(ssim(recon, images).mean()),
        "agree": float(agreement(target, recon, images).mean()),
        "agree_verifier": float(
            agreement(build_classifier(VERIFIER).freeze(), recon, images).mean()
        ),
    }


DEPTHS = tuple(range(1, len(LAYERS) + 1))


def run(source: str, method: str, depths=DEPTHS, **overrides) -> dict:
    """Scores of ``method`` trained on ``source``, for each depth: ``{depth: metrics}``.

    ``blockwise``: the first d blocks of one blockwise-trained stack; ``layerwise``: those
    re-synced from depth d; ``naive``: one decoder per depth.
    """
    results = {}
    for depth in depths:
        method_of_recipe = "naive" if method == "naive" else "layerwise"
        recipe = Recipe(source, method_of_recipe, depth, **overrides)
        stack, seconds = trained(recipe, resync=method == "layerwise")
        results[depth] = {**evaluate(stack, depth, recipe.target), "seconds": seconds}
    return results


def _cell(metrics: dict[str, float]) -> str:
    return f"{metrics['psnr']:.1f} / {metrics['ssim']:.2f} / {metrics['agree']:.2f}"


def main_table() -> str:
    """Sources x methods, one column per depth; writes the depth grids."""
    header = "| training data | inverter | " + " | ".join(f"`{layer}`" for layer in LAYERS)
    rows = [header + " | train time (s) |", "|---|---|" + "---:|" * (len(LAYERS) + 1)]
    for source in SOURCES:
        for method in METHODS:
            results = run(source, method)
            seconds = sum(r["seconds"] for r in results.values())
            if method == "blockwise":
                seconds = results[len(LAYERS)]["seconds"]  # one stack serves every depth
            cells = " | ".join(_cell(results[d]) for d in DEPTHS)
            rows.append(f"| {source} | {method} | {cells} | {seconds:.0f} |")
            print(rows[-1], flush=True)
    return "\n".join(rows)


ABLATION_DEPTH = 3
ABLATIONS: dict[str, dict[str, Any]] = {  # Recipe overrides
    "default (batch norm, cycle terms)": {},
    "no cycle terms": {"weights": (("cycle", 0.0), ("resync_cycle", 0.0))},
    "no normalisation": {"block": (("norm", "none"),)},
    "group norm": {"block": (("norm", "group"),)},
}


def ablation_table() -> str:
    """The inverse-block normalisation and the cycle terms, inverting from stage2."""
    rows = [
        "| variant (smooth noise, from `stage2`) | blockwise | layerwise (re-synced) "
        "| agreement of digits:cnn (layerwise) |",
        "|---|---:|---:|---:|",
    ]
    for name, overrides in ABLATIONS.items():
        options = {"stack_depth": ABLATION_DEPTH, **overrides}
        depth = (ABLATION_DEPTH,)
        blockwise = run("smooth", "blockwise", depth, **options)[ABLATION_DEPTH]
        layerwise = run("smooth", "layerwise", depth, **options)[ABLATION_DEPTH]
        rows.append(
            f"| {name} | {_cell(blockwise)} | {_cell(layerwise)} | "
            f"{layerwise['agree_verifier']:.2f} |"
        )
        print(rows[-1], flush=True)
    return "\n".join(rows)


# The deep target: 19 convolutions before the head, cut after every residual block (ten
# blocks); inverted from the end of each stage. Bigger per-block budgets than the shallow
# table, and the naive decoder at two budgets: about the layer-wise training time (1,100
# steps), and as many steps as the layer-wise stack took (300 per block + 300 re-sync).
# The layer-wise and the time-matched naive rows are repeated with another seed (the
# initialisation and the noise).
DEEP_DEPTHS = (4, 7, 10)  # after stage1.2, stage2.2, stage3.2: 7, 13, 19 convolutions
DEEP: dict[str, Any] = {
    "target": DEEP_TARGET,
    "stack_depth": 10,
    "block_steps": 300,
    "resync_steps": 300,
}
DEEP_NO_CYCLE = {**DEEP, "weights": (("cycle", 0.0), ("resync_cycle", 0.0))}
DEEP_NAIVE_STEPS = 1100
DEEP_NAIVE = {**DEEP, "naive_steps": DEEP_NAIVE_STEPS}  # about the layer-wise time


def deep_rows() -> dict[str, dict[int, dict[str, float]]]:
    """Scores of each row of the deep table (smooth noise): ``{row: {depth: metrics}}``."""
    rows = {
        "layerwise": run("smooth", "layerwise", DEEP_DEPTHS, **DEEP),
        "blockwise": run("smooth", "blockwise", DEEP_DEPTHS, **DEEP),
        "layerwise, no cycle terms": run("smooth", "layerwise", DEEP_DEPTHS, **DEEP_NO_CYCLE),
        f"naive, {DEEP_NAIVE_STEPS} steps": run("smooth", "naive", DEEP_DEPTHS, **DEEP_NAIVE),
    }
    same_steps = {}
    for depth in DEEP_DEPTHS:
        steps = depth * DEEP["block_steps"] + DEEP["resync_steps"]
        same_steps.update(run("smooth", "naive", (depth,), **DEEP, naive_steps=steps))
    rows["naive, as many steps as layerwise"] = same_steps
    # the comparison again, with another initialisation and noise
    rows["layerwise, seed 1"] = run("smooth", "layerwise", DEEP_DEPTHS, **DEEP, seed=1)
    rows[f"naive, {DEEP_NAIVE_STEPS} steps, seed 1"] = run(
        "smooth", "naive", DEEP_DEPTHS, **DEEP_NAIVE, seed=1
    )
    return rows


def deep_table() -> str:
    """The deep target: PSNR / target agreement / verifier agreement, and train seconds."""
    layers = [CUTS[DEEP_TARGET][d - 1] for d in DEEP_DEPTHS]
    header = "| inverter (smooth noise) | " + " | ".join(f"`{name}`" for name in layers)
    rows = [
        header + " | train time (s) per depth |",
        "|---|" + "---:|" * (len(layers) + 1),
    ]
    for name, results in deep_rows().items():
        cells = " | ".join(
            f"{r['psnr']:.1f} / {r['agree']:.2f} / {r['agree_verifier']:.2f}"
            for r in (results[d] for d in DEEP_DEPTHS)
        )
        seconds = " / ".join(f"{results[d]['seconds']:.0f}" for d in DEEP_DEPTHS)
        if name == "blockwise":
            seconds = f"{results[DEEP_DEPTHS[-1]]['seconds']:.0f} (one stack)"
        rows.append(f"| {name} | {cells} | {seconds} |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


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
    """``images`` reconstructed from each depth by the (cached) inverters of a method."""
    by_depth = []
    for depth in depths:
        stack, _ = trained(Recipe(source, method, depth, **fields))
        with torch.no_grad():
            by_depth.append(stack(_blocks(depth, target)(images), depth).clamp(0, 1))
    return by_depth


def write_deep_grid() -> Path:
    """Original | reconstruction from the end of each stage of the deep target (PNG).

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

    grids = _grids(source, DEPTHS, TARGET, {"layerwise": {}, "naive": {}})
    path = README_DIR / f"depths_{source}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(grids, dim=1), path)
    return path


def tables() -> str:
    """Both tables, as the README shows them; writes the grids."""
    start = time.perf_counter()
    main = main_table()
    ablation = ablation_table()
    deep = deep_table()
    for source in ("smooth", "synthesised"):
        write_grids(source)
    write_deep_grid()
    minutes = (time.perf_counter() - start) / 60
    return (
        main
        + "\n\nAblation of the default inverse block and loss (one stack of three blocks):\n\n"
        + ablation
        + "\n\nThe deep target `digits:resnet-deep`, cut after each of its ten blocks; each "
        "cell **PSNR (dB) / agreement of the target / agreement of digits:cnn**:\n\n"
        + deep
        + f"\n\n(This run: {minutes:.0f} min, {torch.get_num_threads()} threads.)"
    )


FIGURES = Path(__file__).resolve().parents[1] / "docs" / "images"


def figures(folder: Path = FIGURES, source: str = "smooth") -> list[Path]:
    """The depth grid with named rows: originals, then each method's reconstruction by depth.

    The layer-wise (re-synced) and the naive inverters of the main table, trained on
    ``source``; one column per test digit.
    """
    from benchmarks.figures import labelled_grid

    images, labels = grid_digits()
    data = "DeepInversion images" if source == "synthesised" else f"{source} noise"
    rows, titles = [images], ["original"]
    for method, name in (("layerwise", "layer-wise"), ("naive", "naive")):
        rows += reconstructions(images, source, DEPTHS, TARGET, method, {})
        titles += [f"{name}, from {LAYERS[depth - 1]}" for depth in DEPTHS]
    path = folder / "layerwise_depths.png"
    labelled_grid(
        torch.stack(rows),
        titles,
        [f"class {int(label)}" for label in labels],
        path,
        title=f"Inverting {TARGET} from each depth (inverters trained on {data} only)",
    )
    return [path]


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", torch.get_num_threads())))
    run_table_command("layerwise_table", tables, figures)
