"""The class-inversion table of the embedded digits benchmark, its claims and its ablation.

For each target in {digits:cnn, digits:vit, digits:mlp} and each recipe that applies
(DeepInversion needs batch norm), invert 10 images per class, then score them with the
other digits models (verifier top-1/top-5) and IS / FID with digits:resnet features (FID
against the digits train split). Every cell is a mean over 3 seeds with its 95% interval.

Fair by construction (DESIGN, "Benchmarks and claims"):
- equal compute: every recipe gets the same number of forward/backward passes per image
  (a step of PII with ensemble E costs E passes); its schedule is scaled to the budget,
  and the table shows the passes counted by a hook on the target;
- each recipe at its best learning rate from a sweep (x0.5, x1, x2 of its default, widened
  by factors of 2 while the best is on an edge: :mod:`benchmarks.sweep`) on a tuning seed
  that no table cell uses (3 images per class), chosen by verifier top-1;
- no label-changing augmentation on digits (no horizontal flip).
A claim "A beats B" is made only where the interval of the paired difference over seeds
excludes zero. Inversions are cached per cell and seed (``<cache>/tables``), so the table
builds up over runs; a cold rebuild takes about 40 minutes on 2 quiet cores.

    python -m benchmarks.class_inversion_table            # prints the tables
    python -m benchmarks.update_readme class_inversion    # writes them into README.md
    python -m benchmarks.class_inversion_table --figures  # write_figures(): docs/images/

The figures read the same cached inversions as the tables (seed 0 of each cell): one image
per class for each target x recipe (``class_inversion_digits.png``) and for each ensemble
size of the ablation (``class_inversion_ensemble.png``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import sweep
from benchmarks.cells import cached_tensors, zoo_keys
from benchmarks.intervals import SEEDS, SeedRuns, estimate, paired_difference, verdict
from benchmarks.table_cli import run_table_command
from inversion import build_classifier
from inversion.class_inversion import ClassInverter, Recipe, recipe_from
from inversion.metrics.scorer import ImageScorer

ZOO = ["digits:cnn", "digits:resnet", "digits:vit", "digits:mlp"]
TARGETS = ["digits:cnn", "digits:vit", "digits:mlp"]
TUNING_SEED = 100  # the learning-rate sweep's seed: never a table cell
IMAGES_PER_CLASS = 10
TUNING_IMAGES_PER_CLASS = 3
BUDGET = 560  # forward/backward passes per image: PII's 7 stages x 20 steps x ensemble 4
LR_FACTORS = sweep.FACTORS  # the first grid of the sweep
CHANCE_TOP1 = 0.1  # ten classes
SOURCES = ["inversion/class_inversion", "inversion/priors.py"]
# Recipe options besides the schedule, which scale_to_budget sets.
OPTIONS: dict[str, dict[str, Any]] = {
    "pii": {"ensemble": 4, "color_shift_mean": 0.25, "color_shift_log_std": 0.25},
    # A flipped digit is another digit (or none). The last iterate, not the best-loss one:
    # the reference compares the half-resolution stage's losses with the full-resolution
    # ones, and at this budget its best-loss iterate is a half-resolution one on 2 of 3
    # seeds (DeepDream on digits:cnn, seeds 1 and 2: the target itself classifies those
    # images at chance). The NVlabs script also writes the last iterate unless
    # --store_best_images is given.
    "deepdream": {"flip": False, "iterate": "last"},
    "deepinversion": {"flip": False, "iterate": "last"},
}
METRICS = [
    ("top1_verifiers", "verifier top-1", 3),
    ("top5_verifiers", "verifier top-5", 3),
    ("is_digits-resnet", "IS (digits-resnet)", 2),
    ("fid_digits-resnet", "FID (digits-resnet)", 1),
    ("kid_digits-resnet", "KID (digits-resnet)", 2),
]
HEADER = (
    "| target | recipe | lr | passes/image | "
    + " | ".join(title for _, title, _ in METRICS)
    + " |\n|---|---|---:|---:|"
    + "---:|" * len(METRICS)
)


def passes_per_image(recipe: Recipe, image_size: int = 32) -> int:
    """Forward/backward passes through the target per image for a whole inversion."""
    from inversion.class_inversion.recipe import build_stages

    return sum(stage.steps for stage in build_stages(recipe, image_size)) * recipe.ensemble


def scale_to_budget(recipe: Recipe, budget: int | None = None) -> Recipe:
    """The recipe with its stages' steps (and warm-up) scaled so it costs ``budget`` passes.

    ``budget`` defaults to :data:`BUDGET`.

    Raises:
        ValueError: The budget cannot be met exactly (it must divide evenly).
    """
    budget = BUDGET if budget is None else budget
    factor = budget / passes_per_image(recipe)
    scaled = dataclasses.replace(
        recipe,
        steps_per_stage=round(recipe.steps_per_stage * factor),
        low_res_steps=round(recipe.low_res_steps * factor),
        warmup_steps=round(recipe.warmup_steps * factor),
    )
    if passes_per_image(scaled) != budget:
        raise ValueError(f"{recipe} cannot be scaled to exactly {budget} passes per image")
    return scaled


def invert(
    target: str, recipe_name: str, options: dict[str, Any], seed: int, per_class: int
) -> dict[str, torch.Tensor]:
    """Invert ``per_class`` images of every class; images, labels, passes and seconds."""
    torch.manual_seed(seed)
    model = build_classifier(target).freeze()
    passes = torch.zeros((), dtype=torch.long)

    def count(_module, inputs) -> None:
        passes.add_(inputs[0].shape[0])

    hook = model.register_forward_pre_hook(count)
    labels = torch.arange(10).repeat_interleave(per_class)
    recipe = scale_to_budget(recipe_from(recipe_name, options))
    inverter = ClassInverter(model, recipe, 32, 1, torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    images = inverter.invert(labels)
    seconds = time.perf_counter() - start
    hook.remove()
    return {
        "images": images,
        "labels": labels,
        "passes_per_image": passes // len(labels),
        "seconds": torch.tensor(seconds),
    }


def cell_fields(
    target: str, recipe_name: str, options: dict[str, Any], seed: int, per_class: int
) -> dict[str, Any]:
    """The fields a cell's cached inversion is keyed by (:func:`cached_inversion`): the
    recipe, the seed, the budget and the target's zoo recipe (a retrained zoo model gets new
    inversions)."""
    return {"target": target, "recipe": recipe_name, "options": options, "seed": seed,
            "per_class": per_class, "budget": BUDGET, "zoo": zoo_keys([target])}  # fmt: skip


def cached_inversion(
    target: str, recipe_name: str, options: dict[str, Any], seed: int, per_class: int
) -> dict[str, torch.Tensor]:
    """:func:`invert`'s result, computed once per cell and seed and kept in the table cache."""
    return cached_tensors(
        "class_inversion",
        cell_fields(target, recipe_name, options, seed, per_class),
        lambda: invert(target, recipe_name, options, seed, per_class),
        SOURCES,
    )


def run(
    target: str,
    recipe_name: str,
    options: dict[str, Any],
    seed: int,
    per_class: int = IMAGES_PER_CLASS,
) -> dict[str, float]:
    """One cell at one seed: the (cached) inversion scored by the verifiers and IS/FID."""
    made = cached_inversion(target, recipe_name, options, seed, per_class)
    scorer = ImageScorer(verifiers=[v for v in ZOO if v != target], feature="digits:resnet")
    scorer.set_reference("digits:train", progress=False)
    scorer.update(made["images"], made["labels"])
    return {
        **{name: float(value) for name, value in scorer.compute().items()},
        "passes_per_image": float(made["passes_per_image"]),
        "time": float(made["seconds"]),
    }


def lr_sweep(target: str, recipe_name: str, options: dict[str, Any]) -> dict[float, float]:
    """The sweep's verifier top-1 on the tuning seed at each learning rate tried: the
    recipe's default times each of :data:`LR_FACTORS`, widened at the grid's edges
    (:mod:`benchmarks.sweep`). Scored once per process (the table, its limit line and the
    figures all ask for it)."""
    return _lr_sweep(target, recipe_name, json.dumps(options, sort_keys=True))


@functools.cache
def _lr_sweep(target: str, recipe_name: str, options_json: str) -> dict[float, float]:
    options = json.loads(options_json)

    def top1(lr: float) -> float:
        made = run(target, recipe_name, {**options, "lr": lr}, TUNING_SEED, TUNING_IMAGES_PER_CLASS)
        return made["top1_verifiers"]

    return sweep.sweep(top1, recipe_from(recipe_name, options).lr, LR_FACTORS)


def tuned_lr(target: str, recipe_name: str, options: dict[str, Any]) -> float:
    """The learning rate of :func:`lr_sweep` with the best verifier top-1 on the tuning
    seed; a tie keeps the default."""
    return sweep.pick(lr_sweep(target, recipe_name, options), recipe_from(recipe_name, options).lr)


def at_sweep_limit() -> list[str]:
    """The main table's rows whose tuned lr is still on the widened grid's edge (the best
    may lie further out)."""
    return [
        f"{recipe_name} on `{target}`"
        for target, recipe_name, options in main_recipes()
        if sweep.at_edge(
            lr_sweep(target, recipe_name, options), recipe_from(recipe_name, options).lr
        )
    ]


@dataclasses.dataclass
class Cell(SeedRuns):
    """One row: a recipe on a target at its tuned learning rate, over the seeds."""

    target: str
    label: str
    lr: float
    runs: list[dict[str, float]]

    def row(self) -> str:
        """One Markdown row."""
        cells = [self.estimate(name).format(digits) for name, _, digits in METRICS]
        passes = int(self.runs[0]["passes_per_image"])
        return (
            f"| `{self.target}` | {self.label} | {self.lr:g} | {passes} | "
            + " | ".join(cells)
            + " |"
        )


def cell(target: str, recipe_name: str, options: dict[str, Any], label: str = "") -> Cell:
    """Tune the learning rate, then run every seed."""
    lr = tuned_lr(target, recipe_name, options)
    runs = [run(target, recipe_name, {**options, "lr": lr}, seed) for seed in SEEDS]
    return Cell(target, label or recipe_name, lr, runs)


def main_cells() -> list[Cell]:
    """Targets x recipes (DeepInversion only where there is batch norm)."""
    cells = []
    for target in TARGETS:
        for recipe_name, options in OPTIONS.items():
            if recipe_name == "deepinversion" and target != "digits:cnn":
                continue  # no batch norm in the ViT and ResMLP: DeepInversion does not apply
            cells.append(cell(target, recipe_name, options))
            print(cells[-1].row(), flush=True)
    return cells


def claims(cells: list[Cell], metric: str = "top1_verifiers") -> list[str]:
    """PII against each baseline on each target, as the paired intervals allow."""
    lines = []
    for target in TARGETS:
        mine = {c.label: c for c in cells if c.target == target}
        above = estimate([v - CHANCE_TOP1 for v in mine["pii"].values(metric)])
        lines.append(
            f"- `{target}`: PII's images are "
            + ("recognised above chance" if above.low > 0 else "not told apart from chance")
            + f" (verifier top-1 minus chance {above.format(3)})"
        )
        for other in ("deepdream", "deepinversion"):
            if other not in mine:
                continue
            diff = paired_difference(mine["pii"].values(metric), mine[other].values(metric))
            lines.append(
                f"- `{target}`: {verdict('PII', other, diff)} "
                f"(verifier top-1, PII minus {other}: {diff.format(3)})"
            )
    return lines


def ensemble_table(target: str = "digits:vit") -> str:
    """PII's ensemble size at equal compute (fewer steps for larger ensembles).

    Every size runs at the learning rate tuned for ensemble 4 (the main table's).
    """
    rows = [HEADER]
    lr = tuned_lr(target, "pii", OPTIONS["pii"])  # the main table's PII (ensemble 4)
    for ensemble in (1, 2, 4, 8):
        options = {**OPTIONS["pii"], "ensemble": ensemble, "lr": lr}
        runs = [run(target, "pii", options, seed) for seed in SEEDS]
        rows.append(Cell(target, f"pii, ensemble {ensemble}", lr, runs).row())
        print(rows[-1], flush=True)
    return "\n".join(rows)


def tables() -> str:
    """The main table, its claims and the ablation, as the README shows them."""
    cells = main_cells()
    return (
        "\n".join([HEADER, *(c.row() for c in cells)])
        + "\n\nAt the widened learning-rate grid's limit (the best rate may lie further out): "
        + ("; ".join(at_sweep_limit()) or "none")
        + ".\n\nWhat the intervals allow (paired over the 3 seeds):\n\n"
        + "\n".join(claims(cells))
        + "\n\nEnsemble-size ablation (PII on `digits:vit`, equal compute):\n\n"
        + ensemble_table()
    )


FIGURES = Path(__file__).resolve().parents[1] / "docs" / "images"
TITLES = {"pii": "PII", "deepdream": "DeepDream", "deepinversion": "DeepInversion"}


def main_recipes() -> list[tuple[str, str, dict[str, Any]]]:
    """The (target, recipe, options) of each cell of the main table, in its order."""
    return [
        (target, recipe_name, options)
        for target in TARGETS
        for recipe_name, options in OPTIONS.items()
        if recipe_name != "deepinversion" or target == "digits:cnn"
    ]


def cell_images(
    target: str, recipe_name: str, options: dict[str, Any], seed: int = SEEDS[0]
) -> torch.Tensor:
    """One image per class (10 x C x H x W, class order) of the inversion :func:`run` caches.

    ``options`` include the learning rate (as :func:`cell` passes them); the inversion is
    read from the table's cache, and computed only where it is missing.
    """
    made = cached_inversion(target, recipe_name, options, seed, IMAGES_PER_CLASS)
    images, labels = made["images"], made["labels"]
    return torch.stack([images[labels == c][0] for c in range(10)])


def write_figures(folder: Path = FIGURES) -> list[Path]:
    """The class-inversion figures: rows are the classes 0-9, one image of seed 0 each.

    ``class_inversion_digits.png``: a column per target x recipe of the main table, each at
    its tuned learning rate; ``class_inversion_ensemble.png``: PII on digits:vit at each
    ensemble size (equal compute, the learning rate tuned for ensemble 4, as
    :func:`ensemble_table`).
    """
    from benchmarks.figures import labelled_grid

    classes = [str(c) for c in range(10)]
    columns = {}
    for target, recipe_name, options in main_recipes():
        lr = tuned_lr(target, recipe_name, options)
        title = f"{target.removeprefix('digits:')}\n{TITLES[recipe_name]}"
        columns[title] = cell_images(target, recipe_name, {**options, "lr": lr})
    paths = [folder / "class_inversion_digits.png", folder / "class_inversion_ensemble.png"]
    labelled_grid(
        torch.stack(list(columns.values()), dim=1),
        classes,
        list(columns),
        paths[0],
        title=f"Class inversion of the digits models (seed 0, {BUDGET} passes per image)",
    )
    target, sizes = "digits:vit", (1, 2, 4, 8)
    lr = tuned_lr(target, "pii", OPTIONS["pii"])  # the main table's PII (ensemble 4)
    ensembles = [
        cell_images(target, "pii", {**OPTIONS["pii"], "ensemble": size, "lr": lr}) for size in sizes
    ]
    labelled_grid(
        torch.stack(ensembles, dim=1),
        classes,
        [f"ensemble\n{size}" for size in sizes],
        paths[1],
        title=f"PII on {target}, equal compute (seed 0)",
    )
    return paths


if __name__ == "__main__":
    run_table_command("class_inversion_table", tables, write_figures)
