"""The robust-prior tables of the embedded digits benchmark (README), and its figures.

1. Robustness: clean and PGD-20 (L2, best iterate, no random start) test accuracy of the
   standard ``digits:cnn`` and the adversarially trained ``digits:cnn-robust`` (the same
   architecture) at several eps.
2. Representation inversion of held-out test digits (10 per class) from gray seeds with
   each model, of the penultimate representation (the paper's R: 128 globally pooled
   features) and of the last convolutional stage (``stage3``: 128 x 8 x 8, which keeps
   positions): PSNR and SSIM to the originals, top-1 of the original digit under the
   independent verifiers (``digits:resnet``, ``digits:vit``, ``digits:mlp``), and how
   often the model itself gives the inversion its original's class.
3. Figures (``docs/images/``): originals above their inversions by each model and layer,
   and the visualised top feature of one digit per class for each model.

    python -m benchmarks.robust_prior_table              # prints the tables, writes figures
    python -m benchmarks.update_readme robust_prior      # writes them into README.md
    python -m benchmarks.robust_prior_table --figures    # figures(): the labelled figures

``--figures`` writes, with titled rows and columns: the accuracy of both models against eps
(``robust_accuracy_eps.png``, the robustness table's numbers), feature manipulation
(``robust_manipulation.png``) and interpolation (``robust_interpolation.png``).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from benchmarks.table_cli import run_table_command
from inversion import build_classifier
from inversion.data.digits import load_digits_split
from inversion.metrics.reconstruction import agreement
from inversion.metrics.scorer import ImageScorer
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

MODELS = {"standard": "digits:cnn", "robust": "digits:cnn-robust"}
LAYERS = ("penultimate", "stage3")
VERIFIERS = ["digits:resnet", "digits:vit", "digits:mlp"]
EVAL_EPS = (0.25, 0.5, 1.0, 1.5, 2.0)
EVAL_STEPS = 20
PER_CLASS = 10
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "images"


def robust_accuracies(
    spec: str, eps: tuple[float, ...] = EVAL_EPS, steps: int = EVAL_STEPS
) -> list[float]:
    """Clean, then L2 PGD test accuracy of ``spec`` at each eps (one clean pass)."""
    model = build_classifier(spec).freeze()
    images, labels = load_digits_split("test")
    results = accuracy_over_eps(model, images, labels, eps, steps=steps)
    return [results["clean_acc"], *(results[robust_acc_key(e)] for e in eps)]


def robust_accuracy(spec: str, eps: float, steps: int = EVAL_STEPS) -> float:
    """Test accuracy of ``spec`` under L2 PGD at one eps (0 eps: clean accuracy)."""
    return robust_accuracies(spec, (eps,), steps)[1]


def robustness_table() -> str:
    """Clean and PGD-20 accuracy of both models at each eps."""
    header = " | ".join(f"PGD-{EVAL_STEPS} ε={eps:g}" for eps in EVAL_EPS)
    rows = [
        f"| model | clean | {header} |",
        "|---|---:|" + "---:|" * len(EVAL_EPS),
    ]
    for name, spec in MODELS.items():
        values = robust_accuracies(spec)
        rows.append(f"| `{spec}` ({name}) | " + " | ".join(f"{v:.3f}" for v in values) + " |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


def held_out_digits(per_class: int = PER_CLASS) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``per_class`` test digits of each class."""
    images, labels = load_digits_split("test")
    index = torch.cat([torch.nonzero(labels == c)[:per_class, 0] for c in range(10)])
    return images[index], labels[index]


def invert(
    spec: str, images: torch.Tensor, layer: str, seed: int = 0
) -> tuple[torch.Tensor, float]:
    """Inversions of ``images``' representations by ``spec`` (tool defaults), and seconds."""
    model = build_classifier(spec).freeze()
    step_size, steps = TOOL_DEFAULTS["invert"]
    seeds = gray_seeds(images.shape, torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    targets = representation(model, images, layer)
    inverted = invert_representation(model, targets, seeds, tool_attack(step_size, steps), layer)
    return inverted, time.perf_counter() - start


def inversion_metrics(spec: str, layer: str, seed: int = 0) -> dict[str, float]:
    """Score the inversions of held-out digits by ``spec`` at ``layer``."""
    images, labels = held_out_digits()
    inverted, seconds = invert(spec, images, layer, seed)
    model = build_classifier(spec).freeze()
    scorer = ImageScorer(verifiers=VERIFIERS, feature=None)
    scorer.update(inverted, labels, originals=images)
    results = scorer.compute()
    results["agree_target"] = agreement(model, inverted, images).mean().item()
    targets = representation(model, images, layer)
    distance = representation_distance(model, inverted, targets, layer)
    results["repr_distance"] = distance.mean().item()
    results["time"] = seconds
    return results


def inversion_row(layer: str, name: str, spec: str, m: dict[str, float]) -> str:
    """One Markdown row of the inversion table."""
    return (
        f"| `{layer}` | `{spec}` ({name}) | {m['images']:.0f} | {m['psnr']:.2f} | "
        f"{m['ssim']:.3f} | {m['top1_verifiers']:.3f} | {m['agree_verifiers']:.3f} | "
        f"{m['agree_target']:.3f} | {m['repr_distance']:.3f} | {m['time']:.0f} |"
    )


def inversion_table() -> str:
    """Inversion quality of both models."""
    step_size, steps = TOOL_DEFAULTS["invert"]
    rows = [
        "| layer | model | images | PSNR (dB) | SSIM | verifier top-1 | verifier agreement "
        "| agreement (model) | final distance | time (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for layer in LAYERS:
        for name, spec in MODELS.items():
            rows.append(inversion_row(layer, name, spec, inversion_metrics(spec, layer)))
            print(rows[-1], flush=True)
    note = (
        f"\n\nInversion: L2 PGD on ||R(x) - R(x_t)|| / ||R(x_t)|| from gray seeds "
        f"(0.5 + N(0, 1)/20), step {step_size}, {steps} steps, best iterate. The digits CNN "
        "pools its last stage globally, so its penultimate features keep no positions."
    )
    return "\n".join(rows) + note


def write_figures(folder: Path = FIGURES, upscale: int = 3) -> list[Path]:
    """Two PNGs: inversions (originals, then standard / robust per layer) and features."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = held_out_digits(1)  # one digit per class
    rows = [images]
    for layer in LAYERS:
        rows += [invert(spec, images, layer)[0] for spec in MODELS.values()]
    visual_rows = []
    for spec in MODELS.values():
        model = build_classifier(spec).freeze()
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
    """Both tables, as the README shows them (and the figures, written to docs/images)."""
    figures = write_figures()
    print("wrote", *figures)
    return robustness_table() + "\n\n" + inversion_table()


def accuracy_figure(folder: Path = FIGURES) -> Path:
    """Clean (eps 0) and PGD-20 test accuracy of both models against eps (the table's)."""
    from benchmarks.figures import curves

    eps = (0.0, *EVAL_EPS)
    series = {f"{name} ({spec})": robust_accuracies(spec) for name, spec in MODELS.items()}
    path = folder / "robust_accuracy_eps.png"
    curves(
        eps,
        series,
        f"L2 eps of PGD-{EVAL_STEPS} (0: clean)",
        "accuracy on the digits test split",
        path,
        title="Robustness of the standard and the adversarially trained digits CNN",
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
