"""The dominant-patterns tables of the embedded digits benchmark (README), and its figure.

Every pattern is one 1 x 32 x 32 perturbation within L-inf eps, optimised for EPOCHS
epochs of batches of 32 (Adam lr 1e-2, weight decay 1e-5, x + p clipped to [0, 1]) on
proxy images whose labels are never read: the digits train split (1,257 images) or as
many batches of Gaussian noise; GD-UAP sees no data at all. Scores are on the digits test
split (360 images): fooling rate (prediction changed vs the clean prediction), dominance
(prediction(x + p) = prediction(p)), clean and perturbed accuracy. A random-sign pattern
(+-eps everywhere) is the control. Patterns are cached in ``$INVERSION_CACHE/patterns/``
(keyed by their recipe and the zoo model's), so the slow tests and this script share them;
the time column is the optimisation's wall time when it ran.

    python -m benchmarks.dominant_patterns_table              # prints the tables
    python -m benchmarks.update_readme dominant_patterns      # writes them into README.md
    python -m benchmarks.dominant_patterns_table --figures    # figures(): labelled figures

``--figures`` writes (``docs/images/``, from the same cached patterns and scores as the
tables) the fooling rate of each method on the target against eps
(``dominant_patterns_fooling_eps.png``) and the transfer of the dominant pattern between
the digits models as a heat map (``dominant_patterns_transfer.png``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from functools import lru_cache
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset
from torchvision.utils import make_grid, save_image

from benchmarks.table_cli import run_table_command
from inversion import build_classifier
from inversion.data.digits import load_digits_split
from inversion.data.noise import noise_images
from inversion.dominant_patterns import (
    PatternObjective,
    UniversalPattern,
    find_pattern,
    random_pattern,
    score_pattern,
    transfer_matrix,
)
from inversion.dominant_patterns.downstream import downstream_accuracy, downstream_classifier
from inversion.models.zoo import ZOO
from inversion.paths import cache_dir, cached_torch_file

FORMAT = 1
TARGET = "digits:cnn"
MODELS = ["digits:cnn", "digits:resnet", "digits:vit", "digits:mlp"]
EPSILONS = (10, 16, 32)  # in 8-bit levels: eps = value / 255 (10: the paper's)
MAIN_EPS = 16
EPOCHS = 5
BATCH = 32
NOISE_IMAGES = 1280  # 40 batches an epoch, like the 1,257 digits train images
METHODS = {  # name in the tables: (objective, proxy)
    "dominant pattern": ("dominant", "digits"),
    "SGD-UAP": ("sgd_uap", "digits"),
    "cosine UAP": ("cosine_uap", "digits"),
    "dominant pattern, noise proxy": ("dominant", "noise"),
    "SGD-UAP, noise proxy": ("sgd_uap", "noise"),
    "cosine UAP, noise proxy": ("cosine_uap", "noise"),
    "GD-UAP (data-free)": ("gd_uap", "none"),
}
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "dominant_patterns_digits.png"
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "images"


@dataclasses.dataclass(frozen=True)
class PatternRecipe:
    """Everything that decides a pattern (every field enters the cache key)."""

    target: str = TARGET
    objective: str = "dominant"
    proxy: str = "digits"  # digits (train split), noise, none (data-free)
    eps: int = MAIN_EPS  # / 255
    layer: str = "logits"
    clip: bool = True
    epochs: int = EPOCHS
    seed: int = 0

    def key(self) -> str:
        """Short hash of the recipe, the format and the target's zoo recipe."""
        zoo_key = ZOO[self.target.removeprefix("digits:")].key()
        fields = {"format": FORMAT, "zoo": zoo_key, **dataclasses.asdict(self)}
        return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]


@lru_cache(maxsize=4)
def model(spec: str):
    """A frozen digits classifier (cached per process)."""
    return build_classifier(spec).freeze()


def proxy_loader(proxy: str, seed: int) -> DataLoader:
    """Shuffled batches of proxy images (digits train split or noise), labels dropped."""
    if proxy == "noise":
        images = noise_images("gaussian", NOISE_IMAGES, 1, 32, torch.Generator().manual_seed(seed))
    else:  # "none" (data-free) only uses the batches to count its steps
        images = load_digits_split("train")[0]
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(images), batch_size=BATCH, shuffle=True, generator=generator)


def optimise(recipe: PatternRecipe) -> tuple[UniversalPattern, float]:
    """Find the pattern of ``recipe``; returns it and the seconds it took."""
    torch.manual_seed(recipe.seed)
    start = time.perf_counter()
    pattern = find_pattern(
        model(recipe.target),
        proxy_loader(recipe.proxy, recipe.seed),
        PatternObjective(recipe.objective, recipe.layer),
        eps=recipe.eps / 255,
        clip=recipe.clip,
        epochs=recipe.epochs,
        progress=True,
    )
    return pattern, time.perf_counter() - start


def pattern_for(recipe: PatternRecipe) -> tuple[UniversalPattern, float]:
    """The pattern of ``recipe`` from the cache, optimised on first use."""
    path = cache_dir() / "patterns" / f"{recipe.target.replace(':', '-')}-{recipe.key()}.pt"

    def build() -> dict:
        pattern, seconds = optimise(recipe)
        saved = {"pattern": pattern.pattern.detach().cpu(), "seconds": seconds}
        return {**saved, "recipe": dataclasses.asdict(recipe)}

    saved = cached_torch_file(path, build)
    pattern = UniversalPattern(1, 32, recipe.eps / 255, recipe.clip).requires_grad_(False)
    pattern.pattern.copy_(saved["pattern"])
    return pattern, float(saved["seconds"])


def control(eps: int) -> UniversalPattern:
    """The random-sign control pattern at ``eps`` / 255."""
    return random_pattern(1, 32, eps / 255, generator=torch.Generator().manual_seed(0))


def run(recipe: PatternRecipe) -> dict[str, float]:
    """Scores of the pattern of ``recipe`` on its target and the digits test split."""
    pattern, seconds = pattern_for(recipe)
    images, labels = load_digits_split("test")
    return {**score_pattern(model(recipe.target), pattern, images, labels), "time": seconds}


def _row(cells: list[str], scores: dict[str, float]) -> str:
    numbers = [f"{scores[k]:.3f}" for k in ("fooling_rate", "dominance")]
    numbers += [f"{scores[k]:.3f}" for k in ("clean_acc", "perturbed_acc")]
    time_cell = f"{scores['time']:.0f}" if "time" in scores else "-"
    return "| " + " | ".join([*cells, *numbers, time_cell]) + " |"


def main_table() -> str:
    """Methods x proxies x eps on the target."""
    rows = [
        "| eps | method | proxy data | fooling rate | dominance | clean acc | perturbed acc "
        "| time (s) |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    images, labels = load_digits_split("test")
    for eps in EPSILONS:
        scores = score_pattern(model(TARGET), control(eps), images, labels)
        rows.append(_row([f"{eps}/255", "random signs (control)", "-"], scores))
        for name, (objective, proxy) in METHODS.items():
            recipe = PatternRecipe(objective=objective, proxy=proxy, eps=eps)
            label = {"digits": "digits train", "noise": "noise", "none": "none"}[proxy]
            rows.append(_row([f"{eps}/255", name.split(",")[0], label], run(recipe)))
            print(rows[-1], flush=True)
    return "\n".join(rows)


def _matrix(title: str, patterns: dict[str, UniversalPattern]) -> list[str]:
    images = load_digits_split("test")[0]
    matrix = transfer_matrix(patterns, {spec: model(spec) for spec in MODELS}, images)
    rows = [
        f"| {title} | " + " | ".join(f"on `{spec}`" for spec in MODELS) + " |",
        "|---|" + "---:|" * len(MODELS),
    ]
    for source, values in matrix.items():
        rows.append(f"| {source} | " + " | ".join(f"{values[s]:.3f}" for s in MODELS) + " |")
    return rows


def _target_patterns() -> dict[str, UniversalPattern]:
    """The control and every method's pattern of the target at MAIN_EPS."""
    patterns = {"random signs (control)": control(MAIN_EPS)}
    for name, (objective, proxy) in METHODS.items():
        patterns[name] = pattern_for(PatternRecipe(objective=objective, proxy=proxy))[0]
    return patterns


def transfer_tables() -> str:
    """Fooling rates of patterns found on one model, applied to every model."""
    dominant = {f"`{spec}`": pattern_for(PatternRecipe(target=spec))[0] for spec in MODELS}
    return "\n".join(
        _matrix("dominant pattern found on", dominant)
        + ["", f"Every method's `{TARGET}` pattern on every model:", ""]
        + _matrix(f"pattern found on `{TARGET}`", _target_patterns())
    )


def downstream_table(tasks: tuple[str, ...] = ("parity", "at_least_5")) -> str:
    """Patterns of the 10-class model against heads fine-tuned on other tasks."""
    images, digits = load_digits_split("test")
    heads = {task: downstream_classifier(TARGET, task) for task in tasks}
    columns = [f"`{TARGET}` (10 classes)"] + [f"+ {task} head" for task in tasks]
    clean = [score_pattern(model(TARGET), control(MAIN_EPS), images, digits)["clean_acc"]]
    clean += [downstream_accuracy(head, task) for task, head in heads.items()]
    rows = [
        "| fooling rate of the pattern | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
        "| (clean accuracy on the task) | " + " | ".join(f"{v:.3f}" for v in clean) + " |",
    ]
    for name, pattern in _target_patterns().items():
        attacked = [model(TARGET), *heads.values()]
        fooling = [score_pattern(m, pattern, images)["fooling_rate"] for m in attacked]
        rows.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in fooling) + " |")
    return "\n".join(rows)


def figure(path: Path = FIGURE, count: int = 8) -> Path:
    """One row per pattern of the target at MAIN_EPS (the control first): the pattern
    amplified (p / (2 eps) + 0.5), then ``count`` perturbed test digits."""
    images = load_digits_split("test")[0][::45][:count]
    cells = []
    for pattern in _target_patterns().values():
        cells += [pattern.picture()[0], *pattern(images)]
    grid = make_grid(torch.stack(cells), nrow=count + 1, padding=2, pad_value=1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.nn.functional.interpolate(grid[None], scale_factor=2)[0], path)
    return path


def ablation_table() -> str:
    """The reported settings of the dominant pattern (and SGD-UAP) at MAIN_EPS."""
    rows = [
        "| method | setting | fooling rate | dominance | clean acc | perturbed acc | time (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    variants = [
        ("dominant pattern", "f = logits, x + p clipped (as above)", PatternRecipe()),
        ("dominant pattern", "x + p not clipped", PatternRecipe(clip=False)),
        ("dominant pattern", "f = penultimate features", PatternRecipe(layer="penultimate")),
        ("SGD-UAP", "x + p not clipped", PatternRecipe(objective="sgd_uap", clip=False)),
    ]
    for name, setting, recipe in variants:
        rows.append(_row([name, setting], run(recipe)))
        print(rows[-1], flush=True)
    return "\n".join(rows)


def tables() -> str:
    """Every table and the figure, as the README shows them."""
    main, ablation = main_table(), ablation_table()
    transfer, downstream = transfer_tables(), downstream_table()
    picture = os.path.relpath(figure(), FIGURE.parents[1])
    rows = "; ".join(_target_patterns())
    return (
        f"{main}\n\nSettings at eps {MAIN_EPS}/255 (digits train proxy):\n\n{ablation}\n\n"
        f"Transfer at eps {MAIN_EPS}/255 (fooling rate on the digits test split; the diagonal "
        f"is the white-box attack):\n\n{transfer}\n\n"
        f"Downstream at eps {MAIN_EPS}/255: the frozen `{TARGET}` backbone with a new head "
        "fine-tuned on another labelling of the digits, attacked with the patterns found on "
        f"the 10-class model:\n\n{downstream}\n\n"
        f"![patterns and perturbed digits]({picture})\n\n"
        f"The patterns of `{TARGET}` at eps {MAIN_EPS}/255, one per row ({rows}): first the "
        "pattern amplified to be seen (p / (2 eps) + 0.5), then perturbed test digits."
    )


def fooling_figure(folder: Path = FIGURES) -> Path:
    """Fooling rate on the target against eps, one line per method (the main table's)."""
    from benchmarks.figures import curves

    images, labels = load_digits_split("test")
    series = {
        "random signs (control)": [
            score_pattern(model(TARGET), control(eps), images, labels)["fooling_rate"]
            for eps in EPSILONS
        ]
    }
    for name, (objective, proxy) in METHODS.items():
        series[name] = [
            run(PatternRecipe(objective=objective, proxy=proxy, eps=eps))["fooling_rate"]
            for eps in EPSILONS
        ]
    path = folder / "dominant_patterns_fooling_eps.png"
    curves(
        list(EPSILONS),
        series,
        "L-inf eps (/255)",
        f"fooling rate on {TARGET} (digits test split)",
        path,
        title="Universal patterns of the digits CNN: fooling rate against eps",
    )
    return path


def transfer_figure(folder: Path = FIGURES) -> Path:
    """The dominant pattern found on each model applied to each model (the transfer table's)."""
    from benchmarks.figures import heatmap

    dominant = {spec: pattern_for(PatternRecipe(target=spec))[0] for spec in MODELS}
    images = load_digits_split("test")[0]
    matrix = transfer_matrix(dominant, {spec: model(spec) for spec in MODELS}, images)
    path = folder / "dominant_patterns_transfer.png"
    heatmap(
        [[matrix[source][target] for target in MODELS] for source in MODELS],
        [f"found on {spec}" for spec in MODELS],
        [f"on {spec}" for spec in MODELS],
        path,
        "fooling rate",
        title=f"Transfer of the dominant pattern (eps {MAIN_EPS}/255)",
    )
    return path


def figures(folder: Path = FIGURES) -> list[Path]:
    """The labelled figures: fooling rate against eps and the transfer heat map."""
    return [fooling_figure(folder), transfer_figure(folder)]


if __name__ == "__main__":
    run_table_command("dominant_patterns_table", tables, figures)
