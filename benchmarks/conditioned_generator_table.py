"""The conditioned-generator table of the embedded digits benchmark (README), and its ablation.

For each target in {digits:cnn, digits:vit, digits:mlp}, train a generator with the
recipe's defaults (``GeneratorRecipe``, trained by the plain loop ``train_generator``,
which ``ConditionedGeneratorInversion`` is pinned to; the same budget for every row:
``STEPS`` steps of ``BATCH`` samples), then draw ``PER_CLASS``
samples of every class (dropout on, as the paper samples) and score them:

- target top-1: the fraction the target assigns to the conditioning class;
- verifier top-1: the same under the other digits models (mean over them);
- feature cosine / pixel distance: within-class diversity (mean pairwise cosine of
  digits:resnet penultimate features, lower = more diverse; RMS pairwise per-pixel
  distance, higher = more diverse), see ``inversion/conditioned_generator/diversity.py``;
- IS / FID with digits:resnet features (FID against the digits train split);
- adversarial rate: samples the target classifies as their class while a majority of
  the verifiers does not, over all samples (``inversion.conditioned_generator.samples``).

The ablation (target digits:cnn) switches the ingredients off one at a time and on one
at a time. Trained generators are cached (``$INVERSION_CACHE/conditioned_generator/``,
the recipe hash in the file name), so the slow tests reuse them.

    python -m benchmarks.conditioned_generator_table          # prints the tables
    python -m benchmarks.update_readme conditioned_generator  # writes them into README.md
    python -m benchmarks.conditioned_generator_table --figures  # figures(): labelled sheets

``--figures`` writes (``docs/images/``) the samples the table scores, from the cached
generators: a sheet with a row per class and a few samples of each target's default
generator (``conditioned_generator_sheet.png``), and one sample per class of each
ablation row (``conditioned_generator_ablation.png``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import torch

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
from inversion.paths import cache_dir, cached_torch_file

ZOO = ["digits:cnn", "digits:resnet", "digits:vit", "digits:mlp"]
TARGETS = ["digits:cnn", "digits:vit", "digits:mlp"]
FEATURES = "digits:resnet"  # diversity, IS and FID features (a verifier of every target)
STEPS, BATCH, PER_CLASS, SEED = 200, 64, 50, 0
# bump when the training recipe below changes meaning; 2: trained by train_generator
# (seeded initialisation, draws seeded by derive_seed), key of the resolved GeneratorRecipe
TABLE_FORMAT = 2
# The recipe's defaults: hot-matrix encoding, dropout 0.5 (on when sampling), KL 1 + CE 1 +
# cosine 5 over same-class pairs, Adam 5e-3, latent 64, width 16.
DEFAULTS: dict = {}
PLAIN = {"conditioning": "onehot", "dropout": 0.0, "cosine_weight": 0.0}
ABLATION: list[tuple[str, dict]] = [
    ("plain: one-hot, no dropout, no cosine", PLAIN),
    ("plain + hidden encoding (hot matrix)", {**PLAIN, "conditioning": "matrix"}),
    ("plain + dropout", {**PLAIN, "dropout": 0.5}),
    ("plain + cosine", {**PLAIN, "cosine_weight": 5.0}),
    ("all three (defaults)", DEFAULTS),
    ("defaults, one-hot instead of hidden", {"conditioning": "onehot"}),
    ("defaults, no dropout", {"dropout": 0.0}),
    ("defaults, no cosine", {"cosine_weight": 0.0}),
    ("defaults, cosine over all pairs (paper's form)", {"cosine_pairs": "all"}),
    ("defaults, soft vector instead of matrix", {"conditioning": "vector"}),
    ("defaults, soft vector + hot matrix", {"conditioning": "vector_matrix"}),
]
HEADER = (
    "| target | generator | target top-1 | verifier top-1 | feature cosine ↓ "
    "| pixel distance ↑ | IS | FID | adversarial | train (s) |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def resolved(options: dict) -> dict:
    """The recipe a row trains with: the defaults, then the row's options."""
    return dataclasses.asdict(GeneratorRecipe.from_dict(options))


def recipe_key(target: str, options: dict) -> str:
    """Short hash of everything that defines a trained generator (rows that resolve to the
    same recipe share it)."""
    recipe = {"format": TABLE_FORMAT, "target": target, "options": resolved(options)}
    recipe.update(steps=STEPS, batch=BATCH, seed=SEED)
    return hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]


def trained_generator(target: str, options: dict) -> tuple[ConditionedGenerator, float]:
    """Train (or load the cached) generator of a row; returns it and its training seconds."""
    path = (
        cache_dir()
        / "conditioned_generator"
        / f"{target.replace(':', '-')}-{recipe_key(target, options)}.pt"
    )
    saved = cached_torch_file(path, lambda: _train(target, options))
    generator = ConditionedGenerator(**saved["init_args"])
    generator.load_state_dict(saved["state_dict"])
    return generator.eval(), float(saved["seconds"])


def _train(target: str, options: dict) -> dict:
    classifier = build_classifier(target).freeze()
    recipe = GeneratorRecipe.from_dict(options)
    start = time.perf_counter()
    generator = train_generator(classifier, STEPS, BATCH, SEED, recipe)
    seconds = time.perf_counter() - start
    return {
        "init_args": dict(generator.init_args),
        "state_dict": generator.state_dict(),
        "seconds": seconds,
    }


def diversity(images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Within-class feature cosine (digits:resnet features) and pixel distance."""
    extractor = build_classifier(FEATURES).freeze()
    metric = ClassDiversity(10, extractor.penultimate(images[:2]).shape[1], images.shape[1], 32)
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


def run(target: str, options: dict) -> dict[str, float]:
    """Train (or load) the generator of a row, sample it and score the samples."""
    generator, seconds = trained_generator(target, options)
    images, labels = sample_classes(generator, range(10), PER_CLASS, seed=SEED + 1)
    return {**score(target, images, labels), "train_seconds": seconds}


def real_digits() -> dict[str, float]:
    """The reference row: the real test digits, scored like samples (no target)."""
    images, labels = load_digits_split("test")
    return {**diversity(images, labels), "n": len(labels)}


def row(target: str, name: str, m: dict[str, float]) -> str:
    """One Markdown row."""
    return (
        f"| `{target}` | {name} | {m['target_top1']:.3f} | {m['top1_verifiers']:.3f} | "
        f"{m['feature_cosine']:.3f} | {m['pixel_distance']:.3f} | "
        f"{m['is_digits-resnet']:.2f} | {m['fid_digits-resnet']:.1f} | "
        f"{m['adversarial_rate']:.3f} | {m['train_seconds']:.0f} |"
    )


def main_table() -> str:
    """Every target with the defaults, and the real digits' diversity for reference."""
    rows = [HEADER]
    for target in TARGETS:
        rows.append(row(target, "defaults", run(target, DEFAULTS)))
        print(rows[-1], flush=True)
    real = real_digits()
    rows.append(
        f"| real digits (test split, {real['n']}) | - | - | - | {real['feature_cosine']:.3f} | "
        f"{real['pixel_distance']:.3f} | - | - | - | - |"
    )
    return "\n".join(rows)


def ablation_table(target: str = "digits:cnn") -> str:
    """What each ingredient does, on one target."""
    rows = [HEADER]
    for name, options in ABLATION:
        rows.append(row(target, name, run(target, options)))
        print(rows[-1], flush=True)
    return "\n".join(rows)


def tables() -> str:
    """Both tables, as the README shows them."""
    return main_table() + "\n\nAblation (target `digits:cnn`, same budget):\n\n" + ablation_table()


FIGURES = Path(__file__).resolve().parents[1] / "docs" / "images"
SHEET_SAMPLES = 4  # per class and target on the sheet


def table_samples(target: str, options: dict) -> torch.Tensor:
    """The samples :func:`run` scores, by class: 10 x PER_CLASS x C x H x W."""
    generator, _ = trained_generator(target, options)
    images, labels = sample_classes(generator, range(10), PER_CLASS, seed=SEED + 1)
    return torch.stack([images[labels == c] for c in range(10)])


def figures(folder: Path = FIGURES) -> list[Path]:
    """The sample sheet of the targets' default generators, and the ablation's samples."""
    from benchmarks.figures import labelled_grid

    classes = [str(c) for c in range(10)]
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
        title=f"Default generator of each target ({STEPS} steps): the first "
        f"{SHEET_SAMPLES} table samples of each class",
    )
    ablation = torch.stack([table_samples("digits:cnn", options)[:, 0] for _, options in ABLATION])
    paths.append(folder / "conditioned_generator_ablation.png")
    labelled_grid(
        ablation,
        [name for name, _ in ABLATION],
        classes,
        paths[1],
        title="Ablation (target digits:cnn): the first table sample of each class",
    )
    return paths


if __name__ == "__main__":
    run_table_command("conditioned_generator_table", tables, figures)
