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

    python benchmarks/layerwise_table.py            # prints the tables, writes the grids
    python benchmarks/update_readme.py layerwise    # writes them into README.md
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch

from datamodules.image_folder import ImageFolderDataset
from datamodules.synthetic_images import FolderBatches, NoiseBatches
from inversion import build_classifier
from inversion.class_inversion import ClassInverter, recipe_from
from inversion.data.digits import load_digits_split
from inversion.data.synthesised import read_synthesised_folder, write_manifest, write_png
from inversion.inverters import BlockOptions, InverterStack
from inversion.layerwise import LossWeights, Schedule, train_stack
from inversion.metrics.reconstruction import agreement, psnr, ssim
from inversion.models.split import split_classifier
from inversion.paths import cache_dir, file_lock

TARGET = "digits:resnet"
VERIFIER = "digits:cnn"
LAYERS = ("stem", "stage1", "stage2", "stage3", "penultimate")
SOURCES = ("smooth", "gaussian", "uniform", "synthesised")
METHODS = ("layerwise", "blockwise", "naive")
FORMAT = 1
# Synthesised training images: DeepInversion of the target, 32 per class.
SYNTHESIS = {
    "recipe": "deepinversion",
    "options": {"low_res_steps": 180, "steps_per_stage": 100, "warmup_steps": 20},
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
    batch: int = 32
    seed: int = 0

    def key(self) -> str:
        """Short hash of the recipe, the target, the layers and the synthesis."""
        payload = {
            "format": FORMAT,
            "target": TARGET,
            "layers": LAYERS[: self.depth],
            "synthesis": SYNTHESIS if self.source == "synthesised" else None,
            **dataclasses.asdict(self),
        }
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _cached(name: str, build) -> dict:
    path = cache_dir() / "layerwise" / f"{name}.pt"
    if not path.is_file():
        with file_lock(path):
            if not path.is_file():
                result = build()
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                torch.save(result, tmp)
                os.replace(tmp, path)
    return torch.load(path, weights_only=True)


def synthesised_folder() -> Path:
    """DeepInversion images of the target, stamped like SaveImages does (cached)."""
    key = hashlib.sha1(json.dumps([TARGET, SYNTHESIS], sort_keys=True).encode()).hexdigest()[:12]
    folder = cache_dir() / "layerwise" / f"synthesised-{key}"
    if (folder / "synthesised.json").is_file():
        return folder
    with file_lock(folder):
        if (folder / "synthesised.json").is_file():
            return folder
        model = build_classifier(TARGET).freeze()
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
        producer = {"module": "ClassInversion", "classifier": TARGET, **SYNTHESIS}
        write_manifest(folder, files, producer)
    return folder


def batches(recipe: Recipe):
    """``step -> images``: the synthetic training data of a recipe (as the DataModule has it)."""
    length = 10**9
    if recipe.source == "synthesised":
        files, labels = read_synthesised_folder(synthesised_folder())
        images = ImageFolderDataset(files, labels, 32, 1, train=False)
        data = FolderBatches(images, recipe.batch, length, recipe.seed)
    else:
        data = NoiseBatches(recipe.source, (1, 32, 32), recipe.batch, length, recipe.seed)
    return lambda step: data[step][0]


def _blocks(depth: int):
    return split_classifier(build_classifier(TARGET).freeze(), LAYERS[:depth], (1, 32, 32))


def _train(recipe: Recipe, schedule: Schedule, init: dict | None) -> dict:
    torch.manual_seed(recipe.seed)
    blocks = _blocks(recipe.depth)
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

    ``layerwise``: blockwise training of every block, then (``resync``) the re-sync from
    the deepest layer. ``naive``: the whole stack end to end.
    """

    def schedule(**steps: int) -> Schedule:
        return Schedule(recipe.depth, lr=1e-3, resync_lr=3e-4, **steps)

    if recipe.method == "naive":
        plan = schedule(method="naive", naive_steps=recipe.naive_steps)
        result = _cached(f"naive-{recipe.key()}", lambda: _train(recipe, plan, None))
        seconds = result["seconds"]
    else:
        blockwise_plan = schedule(blockwise_steps=recipe.block_steps, resync_steps=0)
        first = dataclasses.replace(recipe, resync_steps=0)
        result = _cached(f"blockwise-{first.key()}", lambda: _train(first, blockwise_plan, None))
        seconds = result["seconds"]
        if resync:
            plan = schedule(blockwise_steps=0, resync_steps=recipe.resync_steps)
            init = result["state_dict"]
            result = _cached(f"resync-{recipe.key()}", lambda: _train(recipe, plan, init))
            seconds += result["seconds"]
    stack = InverterStack(_blocks(recipe.depth).shapes, BlockOptions.from_dict(dict(recipe.block)))
    stack.load_state_dict(result["state_dict"])
    return stack.eval(), seconds


@torch.no_grad()
def evaluate(stack: InverterStack, depth: int) -> dict[str, float]:
    """Invert the real test digits from ``depth``: PSNR, SSIM, agreement (target, verifier)."""
    images, _ = load_digits_split("test")
    target = build_classifier(TARGET).freeze()
    blocks = _blocks(depth)
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

    ``layerwise`` and ``blockwise`` use one stack for every depth (its first d blocks);
    ``naive`` trains one decoder per depth.
    """
    results = {}
    for depth in depths:
        if method == "naive":
            stack, seconds = trained(Recipe(source, "naive", depth, **overrides))
        else:
            stack, seconds = trained(Recipe(source, **overrides), resync=method == "layerwise")
        results[depth] = {**evaluate(stack, depth), "seconds": seconds}
    return results


def _cell(metrics: dict[str, float]) -> str:
    return f"{metrics['psnr']:.1f} / {metrics['ssim']:.2f} / {metrics['agree']:.2f}"


def main_table() -> str:
    """Sources x methods, one column per depth."""
    header = "| training data | inverter | " + " | ".join(f"`{layer}`" for layer in LAYERS)
    rows = [header + " | train time (s) |", "|---|---|" + "---:|" * (len(LAYERS) + 1)]
    for source in SOURCES:
        for method in METHODS:
            results = run(source, method)
            seconds = sum({round(r["seconds"], 3) for r in results.values()})
            cells = " | ".join(_cell(results[d]) for d in range(1, len(LAYERS) + 1))
            rows.append(f"| {source} | {method} | {cells} | {seconds:.0f} |")
            print(rows[-1], flush=True)
    return "\n".join(rows)


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", torch.get_num_threads())))
    start = time.perf_counter()
    print(main_table())
    print(f"total {time.perf_counter() - start:.0f} s", file=sys.stderr)
