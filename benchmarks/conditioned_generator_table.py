"""The conditioned-generator table of the embedded digits benchmark, its ablation and claims.

For each target in {digits:cnn, digits:vit, digits:mlp}, train a generator with the
recipe's defaults (``GeneratorRecipe``, trained by the plain loop ``train_generator``,
which ``ConditionedGeneratorInversion`` is pinned to; the same budget for every row:
``STEPS`` steps of ``BATCH`` samples), then draw ``PER_CLASS`` samples of every class
(dropout on, as the paper samples) and score them:

- target top-1: the fraction the target assigns to the conditioning class;
- verifier top-1: the same under the other digits models (mean over them);
- feature cosine / pixel distance: within-class diversity (mean pairwise cosine of
  digits:resnet penultimate features, lower = more diverse; RMS pairwise per-pixel
  distance, higher = more diverse), see ``inversion/conditioned_generator/diversity.py``;
- IS / FID with digits:resnet features (FID against the digits train split);
- adversarial rate: samples the target classifies as their class while a majority of
  the verifiers does not, over all samples (``inversion.conditioned_generator.samples``).

The ablation (target digits:cnn) switches the ingredients off one at a time and on one
at a time. Every cell is a mean over the seeds ``SEEDS`` with its 95% interval; the seed
is the generator's own randomness (its initialisation, the training draws of latents,
labels and encoding noise, the dropout masks, and the sampling draws). A claim "A beats B"
is made only where the interval of the paired difference over seeds excludes zero
(:func:`claims`). Each trained generator is cached per (target, recipe, seed) in the
table cache (``<cache>/tables/conditioned_generator/``, keyed by the zoo recipe of the
target and the code of ``inversion/conditioned_generator``), and scoring recomputes from
it, so the table builds up over runs and the slow tests only score.

    python -m benchmarks.conditioned_generator_table          # prints the tables
    python -m benchmarks.update_readme conditioned_generator  # writes them into the docs
    python -m benchmarks.conditioned_generator_table --figures  # figures(): labelled sheets

``--figures`` writes (``docs/images/``) samples the table scores (seed 0), from the
cached generators: a sheet with a row per class and a few samples of each target's
default generator (``conditioned_generator_sheet.png``), and one sample per class of each
ablation row (``conditioned_generator_ablation.png``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.cells import cached_tensors, zoo_keys
from benchmarks.intervals import SEEDS, SeedRuns, estimate, paired_difference, verdict
from benchmarks.table_cli import run_table_command
from inversion import build_classifier
from inversion.conditioned_generator import (
    ClassDiversity,
    ConditionedGenerator,
    GeneratorRecipe,
    adversarial_samples,
    predict,
    sample_classes,
    train_generator,
)
from inversion.data.digits import load_digits_split
from inversion.metrics.scorer import ImageScorer

TABLE = "conditioned_generator"
ZOO = ["digits:cnn", "digits:resnet", "digits:vit", "digits:mlp"]
TARGETS = ["digits:cnn", "digits:vit", "digits:mlp"]
FEATURES = "digits:resnet"  # diversity, IS and FID features (a verifier of every target)
NUM_CLASSES = 10
STEPS, BATCH, PER_CLASS = 200, 64, 50
SAMPLE_SEED = 1000  # the samples of seed s are drawn with seed SAMPLE_SEED + s
CHANCE_TOP1 = 1 / NUM_CLASSES
SOURCES = ["inversion/conditioned_generator", "inversion/schedules.py"]
# The recipe's defaults: hot-matrix encoding, dropout 0.5 (on when sampling), KL 1 + CE 1 +
# cosine 5 over same-class pairs, Adam 5e-3, latent 64, width 16.
DEFAULTS: dict[str, Any] = {}
PLAIN: dict[str, Any] = {"conditioning": "onehot", "dropout": 0.0, "cosine_weight": 0.0}


@dataclasses.dataclass(frozen=True)
class Variant:
    """One ablation row: its name (in the table and the claims), what it is, its options."""

    name: str
    description: str
    options: dict[str, Any]


ABLATION: list[Variant] = [
    Variant("plain", "one-hot encoding, no dropout, no cosine term", PLAIN),
    Variant("plain + hot matrix", "plain with the hidden encoding (hot matrix)",
            {**PLAIN, "conditioning": "matrix"}),
    Variant("plain + dropout", "plain with dropout 0.5", {**PLAIN, "dropout": 0.5}),
    Variant("plain + cosine", "plain with the cosine term (weight 5, same-class pairs)",
            {**PLAIN, "cosine_weight": 5.0}),
    Variant("defaults", "all three: hot matrix, dropout 0.5, same-class cosine term", DEFAULTS),
    Variant("defaults with one-hot", "one-hot encoding instead of the hot matrix",
            {"conditioning": "onehot"}),
    Variant("defaults without dropout", "dropout 0", {"dropout": 0.0}),
    Variant("defaults without cosine", "cosine weight 0", {"cosine_weight": 0.0}),
    Variant("defaults with all-pairs cosine", "the cosine term over all pairs of a batch (the "
            "paper's form) instead of same-class pairs", {"cosine_pairs": "all"}),
    Variant("defaults with soft vector", "the soft vector instead of the hot matrix",
            {"conditioning": "vector"}),
    Variant("defaults with soft vector + hot matrix", "the soft vector beside the hot matrix",
            {"conditioning": "vector_matrix"}),
]  # fmt: skip
# (metric, column title, decimals, higher is better)
METRICS: list[tuple[str, str, int, bool]] = [
    ("target_top1", "target top-1", 3, True),
    ("top1_verifiers", "verifier top-1", 3, True),
    ("feature_cosine", "feature cosine ↓", 3, False),
    ("pixel_distance", "pixel distance ↑", 3, True),
    ("is_digits-resnet", "IS", 2, True),
    ("fid_digits-resnet", "FID", 1, False),
    ("adversarial_rate", "adversarial", 3, True),
]
# The metrics the ablation's claims compare (name in the claims, metric).
CLAIMED = [
    ("verifier top-1", "top1_verifiers"),
    ("feature cosine", "feature_cosine"),
    ("pixel distance", "pixel_distance"),
    ("FID", "fid_digits-resnet"),
]
METRIC_DIGITS = {name: digits for name, _, digits, _ in METRICS}
HEADER = (
    "| target | generator | "
    + " | ".join(title for _, title, _, _ in METRICS)
    + " |\n|---|---|"
    + "---:|" * len(METRICS)
)


def resolved(options: dict[str, Any]) -> dict[str, Any]:
    """The recipe a row trains with: the defaults, then the row's options."""
    return dataclasses.asdict(GeneratorRecipe.from_dict(options))


def cell_fields(target: str, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """Everything that defines a trained generator (rows that resolve alike share it)."""
    return {"target": target, "recipe": resolved(options), "steps": STEPS, "batch": BATCH,
            "seed": seed, "zoo": zoo_keys([target])}  # fmt: skip


def _train(target: str, options: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    classifier = build_classifier(target).freeze()
    recipe = GeneratorRecipe.from_dict(options)
    start = time.perf_counter()
    generator = train_generator(classifier, STEPS, BATCH, seed, recipe)
    seconds = time.perf_counter() - start
    state = {f"state.{k}": v for k, v in generator.state_dict().items()}
    return {**state, "seconds": torch.tensor(seconds)}


def trained_generator(target: str, options: dict[str, Any], seed: int) -> ConditionedGenerator:
    """Train (or load the cached) generator of a row at a seed (eval mode).

    The cell also keeps the training seconds, measured when it was trained (the table shows
    no time: measured on a shared machine, it is noise).
    """
    made = cached_tensors(
        TABLE, cell_fields(target, options, seed), lambda: _train(target, options, seed), SOURCES
    )
    generator = GeneratorRecipe.from_dict(options).new_generator(NUM_CLASSES, seed)
    generator.load_state_dict(
        {k.removeprefix("state."): v for k, v in made.items() if k.startswith("state.")}
    )
    return generator.eval()


def draw(generator: ConditionedGenerator, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples a cell scores at ``seed``: ``PER_CLASS`` of each class, and their labels."""
    return sample_classes(generator, range(NUM_CLASSES), PER_CLASS, seed=SAMPLE_SEED + seed)


def diversity(images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Within-class feature cosine (digits:resnet features) and pixel distance."""
    extractor = build_classifier(FEATURES).freeze()
    metric = ClassDiversity(
        NUM_CLASSES, extractor.penultimate(images[:2]).shape[1], images.shape[1], 32
    )
    with torch.no_grad():
        metric.update(extractor.penultimate(images), images, labels)
    return {k: float(v) for k, v in metric.compute().items()}


def score(target: str, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Every column of a row but the training time."""
    verifier_specs = [v for v in ZOO if v != target]
    scorer = ImageScorer(verifiers=verifier_specs, feature=FEATURES, splits=5)
    scorer.set_reference("digits:train", progress=False)
    scorer.update(images, labels)
    metrics = scorer.compute()
    classifier = build_classifier(target).freeze()
    verifiers = [build_classifier(v).freeze() for v in verifier_specs]
    found = adversarial_samples(classifier, verifiers, images, labels, "majority")
    metrics["target_top1"] = float((predict(classifier, images) == labels).float().mean())
    metrics["adversarial_rate"] = float(found["adversarial_rate"])
    return {**metrics, **diversity(images, labels)}


def run(target: str, options: dict[str, Any], seed: int) -> dict[str, float]:
    """One cell at one seed: the (cached) generator's samples, scored."""
    images, labels = draw(trained_generator(target, options, seed), seed)
    return score(target, images, labels)


@dataclasses.dataclass
class Cell(SeedRuns):
    """One row: a recipe on a target, over the seeds."""

    target: str
    label: str
    runs: list[dict[str, float]]

    def row(self) -> str:
        """One Markdown row."""
        cells = [self.estimate(name).format(digits) for name, _, digits, _ in METRICS]
        return f"| `{self.target}` | {self.label} | " + " | ".join(cells) + " |"


def cell(target: str, options: dict[str, Any], label: str) -> Cell:
    """A row over every seed."""
    return Cell(target, label, [run(target, options, seed) for seed in SEEDS])


def main_cells() -> list[Cell]:
    """Every target with the defaults."""
    cells = []
    for target in TARGETS:
        cells.append(cell(target, DEFAULTS, "defaults"))
        print(cells[-1].row(), flush=True)
    return cells


def ablation_cells(target: str = "digits:cnn") -> list[Cell]:
    """Every ablation row on one target (labelled by the variants' names)."""
    cells = []
    for variant in ABLATION:
        cells.append(cell(target, variant.options, variant.name))
        print(cells[-1].row(), flush=True)
    return cells


def main_claims(cells: list[Cell]) -> list[str]:
    """Whether each target's default samples are recognised above chance by the verifiers."""
    lines = []
    for c in cells:
        for metric, title in (("target_top1", "the target"), ("top1_verifiers", "the verifiers")):
            above = estimate([v - CHANCE_TOP1 for v in c.values(metric)])
            lines.append(
                f"- `{c.target}`: the default samples are "
                + ("recognised above chance" if above.low > 0 else "not told apart from chance")
                + f" by {title} (top-1 minus chance {above.format(3)})"
            )
    return lines


def ablation_claims(cells: list[Cell]) -> list[str]:
    """Each ablation row against the defaults on :data:`CLAIMED`, as the paired intervals allow.

    ``cells`` are :func:`ablation_cells` (one labelled ``defaults``).
    """
    defaults = next(c for c in cells if c.label == "defaults")
    higher = {name: better for name, _, _, better in METRICS}
    lines = []
    for c in cells:
        if c is defaults:
            continue
        for title, metric in CLAIMED:
            diff = paired_difference(c.values(metric), defaults.values(metric))
            lines.append(
                f"- {title}: {verdict(c.label, 'defaults', diff, higher[metric])} "
                f"({c.label} minus defaults: {diff.format(METRIC_DIGITS[metric])})"
            )
    return lines


def claims(main: list[Cell], ablation: list[Cell]) -> list[str]:
    """Every claim the page makes: :func:`main_claims`, then :func:`ablation_claims`."""
    return main_claims(main) + ablation_claims(ablation)


def real_digits() -> dict[str, float]:
    """The reference row: the real test digits, scored like samples (no target)."""
    images, labels = load_digits_split("test")
    return {**diversity(images, labels), "n": len(labels)}


def real_row() -> str:
    """The real digits' diversity, for reference."""
    real = real_digits()
    return (
        f"| real digits (test split, {real['n']:.0f}) | - | - | - | {real['feature_cosine']:.3f} | "
        f"{real['pixel_distance']:.3f} | - | - | - |"
    )


def tables() -> str:
    """Both tables and the claims their intervals allow, as the docs show them."""
    main = main_cells()
    ablation = ablation_cells()
    n = len(SEEDS)
    return (
        "\n".join([HEADER, *(c.row() for c in main), real_row()])
        + f"\n\nWhat the intervals allow (over the {n} seeds):\n\n"
        + "\n".join(main_claims(main))
        + "\n\nAblation (target `digits:cnn`, same budget):\n\n"
        + "\n".join([HEADER, *(c.row() for c in ablation)])
        + "\n\n"
        + "\n".join(f"- *{v.name}*: {v.description}" for v in ABLATION)
        + f"\n\nEach variant against the defaults (paired over the {n} seeds):\n\n"
        + "\n".join(ablation_claims(ablation))
    )  # fmt: skip


FIGURES = Path(__file__).resolve().parents[1] / "docs" / "images"
SHEET_SAMPLES = 4  # per class and target on the sheet


def table_samples(target: str, options: dict[str, Any], seed: int = SEEDS[0]) -> torch.Tensor:
    """The samples :func:`run` scores at ``seed``, by class: 10 x PER_CLASS x C x H x W."""
    images, labels = draw(trained_generator(target, options, seed), seed)
    return torch.stack([images[labels == c] for c in range(NUM_CLASSES)])


def figures(folder: Path = FIGURES) -> list[Path]:
    """The sample sheet of the targets' default generators, and the ablation's samples (seed 0)."""
    from benchmarks.figures import labelled_grid

    classes = [str(c) for c in range(NUM_CLASSES)]
    sheet = torch.cat(
        [table_samples(target, DEFAULTS)[:, :SHEET_SAMPLES] for target in TARGETS], dim=1
    )
    columns = [
        f"{target.removeprefix('digits:')}\n#{i + 1}"
        for target in TARGETS
        for i in range(SHEET_SAMPLES)
    ]
    paths = [folder / "conditioned_generator_sheet.png"]
    labelled_grid(
        sheet,
        classes,
        columns,
        paths[0],
        title=f"Default generator of each target ({STEPS} steps, seed {SEEDS[0]}): the first "
        f"{SHEET_SAMPLES} table samples of each class",
    )
    ablation = torch.stack([table_samples("digits:cnn", v.options)[:, 0] for v in ABLATION])
    paths.append(folder / "conditioned_generator_ablation.png")
    labelled_grid(
        ablation,
        [v.name for v in ABLATION],
        classes,
        paths[1],
        title=f"Ablation (target digits:cnn, seed {SEEDS[0]}): the first table sample of "
        "each class",
    )
    return paths


if __name__ == "__main__":
    run_table_command("conditioned_generator_table", tables, figures)
