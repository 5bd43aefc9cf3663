"""The robust-prior tables of the embedded digits benchmark (docs), their claims and figures.

Every cell is a mean over the 3 seeds of ``benchmarks.intervals.SEEDS`` with its 95%
interval. The seed is the models' training seed: seed 0 is the zoo's ``digits:cnn`` and
``digits:cnn-robust`` themselves, seeds 1 and 2 the same recipes trained from other seeds
(``inversion.models.zoo.zoo_variant``, trained by the zoo's loop on first use and cached
by their recipe key). The inversion's own randomness follows the seed too: which test
digits are inverted and the gray seeds it starts from (the same for both models at one
seed, so the comparison is paired).

1. Robustness: clean and PGD-20 (L2, best iterate, no random start) test accuracy of the
   standard and the adversarially trained CNN (the same architecture) at several eps.
2. Representation inversion of held-out test digits (:data:`PER_CLASS` per class) from
   gray seeds with each model, of the penultimate representation (the paper's R: 128
   globally pooled features) and of the last convolutional stage (``stage3``: 128 x 8 x 8,
   which keeps positions): PSNR and SSIM to the originals, top-1 of the original digit
   under the independent verifiers (``digits:resnet``, ``digits:vit``, ``digits:mlp``),
   and how often the model itself gives the inversion its original's class.
3. Claims (:func:`claims`): robust against standard on each accuracy and each inversion
   metric, "A beats B" only where the interval of the paired difference excludes zero.

Accuracies and inversions are cached per model, setting and seed (``<cache>/tables/
robust_prior``; the inversions as images, so a change of the metrics only rescores).

    python -m benchmarks.robust_prior_table              # prints the tables, writes figures
    python -m benchmarks.update_readme robust_prior      # writes them into the docs
    python -m benchmarks.robust_prior_table --figures    # figures(): the labelled figures

The tables also write ``robust_inversion.png`` (the cached seed-0 inversions) and
``robust_features.png``. ``--figures`` writes, with titled rows and columns: the accuracy of
both models against eps (``robust_accuracy_eps.png``, the robustness table's means and
intervals), feature manipulation (``robust_manipulation.png``) and interpolation
(``robust_interpolation.png``) by the zoo's models (seed 0).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import make_grid, save_image

from benchmarks.cells import cached_cell, cached_tensors
from benchmarks.intervals import SEEDS, SeedRuns, paired_difference, verdict
from benchmarks.table_cli import run_table_command
from inversion import build_classifier
from inversion.data.digits import load_digits_split
from inversion.metrics.reconstruction import agreement
from inversion.metrics.scorer import ImageScorer
from inversion.models import ImageClassifier
from inversion.models.zoo import load_zoo_model, zoo_variant
from inversion.robust_prior import (
    DEFAULT_ALPHAS,
    TOOL_DEFAULTS,
    accuracy_over_eps,
    apply_tool,
    gray_seeds,
    interpolate_representations,
    invert_representation,
    representation,
    representation_distance,
    robust_acc_key,
    tool_attack,
    top_features,
    visualize_features,
)

TABLE = "robust_prior"  # the folder of its cells in the table cache
MODELS = {"standard": "digits:cnn", "robust": "digits:cnn-robust"}
LAYERS = ("penultimate", "stage3")
VERIFIERS = ["digits:resnet", "digits:vit", "digits:mlp"]
EVAL_EPS = (0.25, 0.5, 1.0, 2.0)  # 1.5 cut for the budget: 1 and 2 bracket it
EVAL_STEPS = 20
PER_CLASS = 5  # test digits inverted per class and seed (10 per class did not fit the budget)
SOURCES = ["inversion/robust_prior", "inversion/attacks.py", "inversion/data/digits.py"]
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "images"
ACCURACIES = [
    ("clean_acc", "clean"),
    *((robust_acc_key(e), f"PGD-{EVAL_STEPS} ε={e:g}") for e in EVAL_EPS),
]
INVERSION_METRICS = [
    ("psnr", "PSNR (dB)", 2),
    ("ssim", "SSIM", 3),
    ("top1_verifiers", "verifier top-1", 3),
    ("agree_verifiers", "verifier agreement", 3),
    ("agree_target", "agreement (model)", 3),
    ("repr_distance", "final distance", 3),
]
# the inversion metrics the claims compare, by the name the claims give them
CLAIMED = {"psnr": "PSNR", "ssim": "SSIM", "top1_verifiers": "verifier top-1"}
NAMES = {"standard": "the standard CNN", "robust": "the robust CNN"}


def seeded_model(spec: str, seed: int) -> ImageClassifier:
    """The zoo model ``spec`` trained from ``seed`` (0: the zoo's own), frozen."""
    name = spec.removeprefix("digits:")
    return load_zoo_model(name, zoo_variant(name, seed)).freeze()


def model_fields(spec: str, seed: int) -> dict[str, Any]:
    """What identifies the model of a cell: its spec, seed and recipe key."""
    name = spec.removeprefix("digits:")
    return {"model": spec, "seed": seed, "zoo_key": zoo_variant(name, seed).key()}


def robust_accuracies(spec: str, seed: int = 0) -> dict[str, float]:
    """Clean and L2 PGD test accuracy of ``spec`` at each eps (a cached cell).

    Keys ``clean_acc`` and ``robust_acc@<eps>`` (:func:`inversion.robust_prior.robust_acc_key`).
    """
    images, labels = load_digits_split("test")
    fields = {"kind": "robustness", **model_fields(spec, seed), "eps": list(EVAL_EPS),
              "steps": EVAL_STEPS}  # fmt: skip
    return cached_cell(
        TABLE,
        fields,
        lambda: accuracy_over_eps(
            seeded_model(spec, seed), images, labels, EVAL_EPS, steps=EVAL_STEPS
        ),
        SOURCES,
    )


def held_out_digits(per_class: int = PER_CLASS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` test digits of each class drawn with ``seed``, in class order."""
    images, labels = load_digits_split("test")
    generator = torch.Generator().manual_seed(seed)
    index = []
    for c in range(10):
        members = torch.nonzero(labels == c)[:, 0]
        index.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    chosen = torch.cat(index)
    return images[chosen], labels[chosen]


def invert(spec: str, layer: str, seed: int) -> dict[str, torch.Tensor]:
    """Inversions of the held-out digits of ``seed`` by ``spec`` at ``seed`` (tool defaults).

    Returns the inversions (``images``), their ``originals`` and ``labels``.
    """
    model = seeded_model(spec, seed)
    originals, labels = held_out_digits(PER_CLASS, seed)
    step_size, steps = TOOL_DEFAULTS["invert"]
    seeds = gray_seeds(originals.shape, torch.Generator().manual_seed(seed))
    targets = representation(model, originals, layer)
    inverted = invert_representation(model, targets, seeds, tool_attack(step_size, steps), layer)
    return {"images": inverted, "originals": originals, "labels": labels}


def cached_inversion(spec: str, layer: str, seed: int) -> dict[str, torch.Tensor]:
    """:func:`invert`'s result, computed once per model, layer and seed (the table cache)."""
    step_size, steps = TOOL_DEFAULTS["invert"]
    fields = {"kind": "inversion", **model_fields(spec, seed), "layer": layer,
              "per_class": PER_CLASS, "step_size": step_size, "steps": steps}  # fmt: skip
    return cached_tensors(TABLE, fields, lambda: invert(spec, layer, seed), SOURCES)


def inversion_metrics(spec: str, layer: str, seed: int = 0) -> dict[str, float]:
    """Score the (cached) inversions of held-out digits by ``spec`` at ``layer`` and ``seed``."""
    made = cached_inversion(spec, layer, seed)
    images, originals = made["images"], made["originals"]
    model = seeded_model(spec, seed)
    scorer = ImageScorer(verifiers=VERIFIERS, feature=None)
    scorer.update(images, made["labels"], originals=originals)
    results = scorer.compute()
    results["agree_target"] = agreement(model, images, originals).mean().item()
    targets = representation(model, originals, layer)
    results["repr_distance"] = representation_distance(model, images, targets, layer).mean().item()
    return results


@dataclasses.dataclass
class Cell(SeedRuns):
    """One row: a model (at one layer, for the inversions), its metrics at each seed."""

    name: str  # a key of MODELS
    layer: str | None  # None for the robustness rows
    runs: list[dict[str, float]]


def robustness_cells() -> list[Cell]:
    """Both models' accuracies at every seed."""
    return [
        Cell(name, None, [robust_accuracies(spec, seed) for seed in SEEDS])
        for name, spec in MODELS.items()
    ]


def inversion_cells() -> list[Cell]:
    """Both models' inversion metrics at each layer and every seed."""
    return [
        Cell(name, layer, [inversion_metrics(spec, layer, seed) for seed in SEEDS])
        for layer in LAYERS
        for name, spec in MODELS.items()
    ]


def robustness_table(cells: list[Cell]) -> str:
    """Clean and PGD-20 accuracy of both models at each eps."""
    rows = [
        "| model | " + " | ".join(title for _, title in ACCURACIES) + " |",
        "|---|" + "---:|" * len(ACCURACIES),
    ]
    for cell in cells:
        values = " | ".join(cell.estimate(key).format(3) for key, _ in ACCURACIES)
        rows.append(f"| `{MODELS[cell.name]}` ({cell.name}) | {values} |")
    return "\n".join(rows)


def inversion_table(cells: list[Cell]) -> str:
    """Inversion quality of both models at each layer."""
    rows = [
        "| layer | model | " + " | ".join(title for _, title, _ in INVERSION_METRICS) + " |",
        "|---|---|" + "---:|" * len(INVERSION_METRICS),
    ]
    for cell in cells:
        values = " | ".join(
            cell.estimate(key).format(digits) for key, _, digits in INVERSION_METRICS
        )
        rows.append(f"| `{cell.layer}` | `{MODELS[cell.name]}` ({cell.name}) | {values} |")
    return "\n".join(rows)


def _verdict_line(subject: str, robust: list[float], standard: list[float], digits: int) -> str:
    difference = paired_difference(robust, standard)
    return (
        f"- {subject}: {verdict(NAMES['robust'], NAMES['standard'], difference)} "
        f"(robust minus standard: {difference.format(digits)})"
    )


def claims(robustness: list[Cell], inversion: list[Cell]) -> list[str]:
    """Robust against standard on each accuracy and inversion metric, as the intervals allow."""
    by_name = {cell.name: cell for cell in robustness}
    lines = [
        _verdict_line(
            f"{title} accuracy",
            by_name["robust"].values(key),
            by_name["standard"].values(key),
            3,
        )
        for key, title in ACCURACIES
    ]
    digits = {key: places for key, _, places in INVERSION_METRICS}
    for layer in LAYERS:
        mine = {cell.name: cell for cell in inversion if cell.layer == layer}
        for key, title in CLAIMED.items():
            lines.append(
                _verdict_line(
                    f"`{layer}` inversions, {title}",
                    mine["robust"].values(key),
                    mine["standard"].values(key),
                    digits[key],
                )
            )
    return lines


def write_figures(folder: Path = FIGURES, upscale: int = 3) -> list[Path]:
    """Two PNGs of seed 0: inversions (originals, then standard / robust per layer), features.

    The inversions are the table's cached ones (the first digit of each class).
    """
    folder.mkdir(parents=True, exist_ok=True)

    def first_of_each_class(made: dict[str, torch.Tensor], key: str) -> torch.Tensor:
        return torch.stack([made[key][made["labels"] == c][0] for c in range(10)])

    seed = SEEDS[0]
    made = {
        (spec, layer): cached_inversion(spec, layer, seed)
        for layer in LAYERS
        for spec in MODELS.values()
    }
    images = first_of_each_class(made[(MODELS["standard"], LAYERS[0])], "originals")
    rows = [images, *(first_of_each_class(m, "images") for m in made.values())]
    visual_rows = []
    for spec in MODELS.values():
        model = seeded_model(spec, seed)
        step_size, steps = TOOL_DEFAULTS["visualize"]
        seeds = gray_seeds(images.shape, torch.Generator().manual_seed(1))
        features = top_features(model, images)
        visual_rows.append(
            visualize_features(model, features, seeds, tool_attack(step_size, steps))
        )
    paths = []
    for name, grid_rows in (("robust_inversion.png", rows), ("robust_features.png", visual_rows)):
        batch = torch.cat(grid_rows).clamp(0, 1)
        batch = torch.nn.functional.interpolate(batch, scale_factor=upscale, mode="nearest")
        path = folder / name
        save_image(make_grid(batch, nrow=len(images), padding=2, pad_value=1.0), path)
        paths.append(path)
    return paths


def tables() -> str:
    """Both tables and their claims, as the docs show them (and the figures, docs/images)."""
    robustness = robustness_cells()
    print(robustness_table(robustness), flush=True)
    inversion = inversion_cells()
    print("wrote", *write_figures())
    step_size, steps = TOOL_DEFAULTS["invert"]
    note = (
        f"Each cell: mean ± 95% interval over {len(SEEDS)} training seeds of both models "
        "(seed 0: the zoo's; the seed also draws the inverted test digits and the gray "
        f"seeds). Inversion of {PER_CLASS} test digits per class and seed: L2 PGD on "
        "||R(x) - R(x_t)|| / ||R(x_t)|| from gray seeds (0.5 + N(0, 1)/20), step "
        f"{step_size}, {steps} steps, best iterate. The digits CNN pools its last stage "
        "globally, so its penultimate features keep no positions."
    )
    return (
        robustness_table(robustness)
        + "\n\n"
        + inversion_table(inversion)
        + "\n\n"
        + note
        + f"\n\nWhat the intervals allow (paired over the {len(SEEDS)} seeds):\n\n"
        + "\n".join(claims(robustness, inversion))
    )


def accuracy_figure(folder: Path = FIGURES) -> Path:
    """Clean (eps 0) and PGD-20 test accuracy of both models against eps: the table's means.

    Error bars: the 95% intervals over the seeds.
    """
    from benchmarks.figures import curves

    eps = (0.0, *EVAL_EPS)
    series, errors = {}, {}
    for cell in robustness_cells():
        label = f"{cell.name} ({MODELS[cell.name]})"
        estimates = [cell.estimate(key) for key, _ in ACCURACIES]
        series[label] = [e.mean for e in estimates]
        errors[label] = [(e.low, e.high) for e in estimates]
    path = folder / "robust_accuracy_eps.png"
    curves(
        eps,
        series,
        f"L2 eps of PGD-{EVAL_STEPS} (0: clean)",
        "accuracy on the digits test split",
        path,
        errors=errors,
        title=f"Robustness of the standard and the adversarially trained digits CNN\n"
        f"(mean and 95% interval over {len(SEEDS)} training seeds)",
    )
    return path


def manipulation_figure(folder: Path = FIGURES) -> Path:
    """One test digit per class, then each model's manipulation of it (the tool's defaults).

    Each digit gets the top penultimate feature of the previous one (the ``manipulate``
    tool: the donor is the previous image of the batch).
    """
    from benchmarks.figures import labelled_grid

    images, labels = held_out_digits(1)
    step_size, steps = TOOL_DEFAULTS["manipulate"]
    rows, titles = [images], ["original"]
    for name, spec in MODELS.items():
        model = build_classifier(spec).freeze()
        attack = tool_attack(step_size, steps)
        out = apply_tool(
            model, "manipulate", images, labels, attack, torch.Generator().manual_seed(0)
        )
        rows.append(out["images"])
        titles.append(f"{name}\n{spec}")
    donors = labels.roll(1, 0)
    path = folder / "robust_manipulation.png"
    labelled_grid(
        torch.stack(rows),
        titles,
        [f"{int(c)} + top\nfeature\nof a {int(d)}" for c, d in zip(labels, donors, strict=True)],
        path,
        title=f"Feature manipulation (L2 PGD, step {step_size}, {steps} steps)",
    )
    return path


INTERPOLATED = ((0, 6), (1, 7), (3, 8))  # pairs of classes of the interpolation figure


def interpolation_figure(folder: Path = FIGURES) -> Path:
    """Inversions of ``(1 - a) R(x1) + a R(x2)`` by each model at each layer of the table.

    One test digit of each class of :data:`INTERPOLATED`'s pairs; gray seeds, the tool's
    defaults.
    """
    from benchmarks.figures import labelled_grid

    images, _ = held_out_digits(1)  # one digit per class, class order
    first = images[[a for a, _ in INTERPOLATED]]
    second = images[[b for _, b in INTERPOLATED]]
    step_size, steps = TOOL_DEFAULTS["interpolate"]
    rows, titles = [], []
    for name, spec in MODELS.items():
        model = build_classifier(spec).freeze()
        for layer in LAYERS:
            seeds = gray_seeds(first.shape, torch.Generator().manual_seed(0))
            attack = tool_attack(step_size, steps)
            mixed = interpolate_representations(
                model, first, second, DEFAULT_ALPHAS, seeds, attack, layer
            )
            for index, (a, b) in enumerate(INTERPOLATED):
                rows.append([first[index], *mixed[index], second[index]])
                titles.append(f"{name}, {layer}: {a} → {b}")
    path = folder / "robust_interpolation.png"
    labelled_grid(
        rows,
        titles,
        ["x1", *(f"a = {a:g}" for a in DEFAULT_ALPHAS), "x2"],
        path,
        title=f"Inverting (1 - a) R(x1) + a R(x2)\n(L2 PGD, step {step_size}, {steps} steps)",
    )
    return path


def figures(folder: Path = FIGURES) -> list[Path]:
    """The labelled figures: accuracy against eps, manipulation and interpolation."""
    folder.mkdir(parents=True, exist_ok=True)
    return [accuracy_figure(folder), manipulation_figure(folder), interpolation_figure(folder)]


if __name__ == "__main__":
    run_table_command("robust_prior_table", tables, figures)
