"""The dominant-patterns tables of the embedded digits benchmark, their claims and figures.

Every pattern is one 1 x 32 x 32 perturbation within L-inf eps, optimised with Adam
(weight decay 1e-5, x + p clipped to [0, 1]) on batches of 32 proxy images whose labels
are never read: the digits train split (1,257 images, reshuffled every epoch) or as many
Gaussian noise images; GD-UAP sees no data at all.

The methods run at equal compute, not equal steps. The budget is what DOMINANT_STEPS
steps of the dominant pattern cost on the pattern's model, in floating-point operations
counted by :func:`benchmarks.compute.step_flops`; each method gets the whole steps of its
own objective that fit it (:func:`steps`). SGD-UAP and the cosine UAP add a gradient-free
forward pass over the clean batch to each step, so they get fewer steps (137 of 200 on
``digits:cnn``); GD-UAP passes the pattern alone, so it gets about 33 times as many.

Scores are on the digits test split (360 images): fooling rate (prediction changed vs
the clean prediction), dominance (prediction(x + p) = prediction(p)) and perturbed
accuracy. A random-sign pattern (+-eps everywhere) is the control.

Each method (objective and proxy) at each eps runs at its best learning rate from a sweep,
LR x LR_FACTORS (1e-2 x 0.5, 1, 2) widened at its edges (:mod:`benchmarks.sweep`),
chosen by the fooling rate on the digits validation split of its pattern at TUNING_SEED,
a seed no table cell uses (:func:`tuned_lr`).

Every cell is a mean over the seeds of :data:`benchmarks.intervals.SEEDS` with its 95%
interval. The seed is the method's own randomness: the order of the proxy batches, the
draw of the noise images and of the random signs (every pattern starts at zero, as in the
method, so GD-UAP, which sees no data, finds the same pattern at every seed). A claim "A
beats B" is made only where the interval of the paired difference (same seeds) excludes
zero (:func:`claims`). Patterns are cached per recipe and seed in the table cache
(``<cache>/tables/dominant_patterns/``, :func:`benchmarks.cells.cached_tensors`), so the
tables build up over runs and the slow tests score the same patterns.

    python -m benchmarks.dominant_patterns_table              # prints the tables
    python -m benchmarks.update_readme dominant_patterns      # writes them into the docs
    python -m benchmarks.dominant_patterns_table --figures    # figures(): labelled figures

``--figures`` writes (``docs/images/``, from the same cached patterns as the tables) the
fooling rate of each method on the target against eps with its intervals
(``dominant_patterns_fooling_eps.png``) and the transfer of the dominant pattern between
the digits models, mean over the seeds, as a heat map (``dominant_patterns_transfer.png``).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Iterator
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset
from torchvision.utils import make_grid, save_image

from benchmarks import sweep
from benchmarks.cells import cached_tensors, zoo_keys
from benchmarks.compute import step_flops, steps_within
from benchmarks.intervals import SEEDS, Estimate, SeedRuns, estimate, paired_difference, verdict
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
)
from inversion.dominant_patterns.downstream import downstream_accuracy, downstream_classifier
from inversion.models import ImageClassifier

TABLE = "dominant_patterns"
SOURCES = ["inversion/dominant_patterns", "inversion/data/digits.py", "inversion/data/noise.py"]
TARGET = "digits:cnn"
MODELS = ["digits:cnn", "digits:resnet", "digits:vit", "digits:mlp"]
EPSILONS = (10, 16, 32)  # in 8-bit levels: eps = value / 255 (10: the paper's)
MAIN_EPS = 16
DOMINANT_STEPS = 200  # the compute budget: this many dominant-pattern steps (~5 epochs)
BATCH = 32
LR = 1e-2
WEIGHT_DECAY = 1e-5
NOISE_IMAGES = 1280  # 40 batches an epoch, like the 1,257 digits train images
LR_FACTORS = sweep.FACTORS  # the sweep's first grid: LR times each
TUNING_SEED = 100  # the sweep's seed: never a table cell
CONTROL = "random signs"
METHODS = {  # name in the tables and claims: (objective, proxy)
    "dominant pattern on digits": ("dominant", "digits"),
    "SGD-UAP on digits": ("sgd_uap", "digits"),
    "cosine UAP on digits": ("cosine_uap", "digits"),
    "dominant pattern on noise": ("dominant", "noise"),
    "SGD-UAP on noise": ("sgd_uap", "noise"),
    "cosine UAP on noise": ("cosine_uap", "noise"),
    "GD-UAP without data": ("gd_uap", "none"),
}
# The methods run at every eps (in the eps tables and the fooling-rate figure).
EVERY_EPS = list(METHODS)
TASKS = ("parity", "at_least_5")
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "dominant_patterns_digits.png"
FIGURES = Path(__file__).resolve().parents[1] / "docs" / "images"


@dataclasses.dataclass(frozen=True)
class PatternRecipe:
    """Everything that decides a pattern besides the module constants (see :meth:`fields`)."""

    target: str = TARGET
    objective: str = "dominant"
    proxy: str = "digits"  # digits (train split), noise, none (data-free)
    eps: int = MAIN_EPS  # / 255
    layer: str = "logits"
    clip: bool = True
    seed: int = SEEDS[0]
    lr: float = LR

    def fields(self) -> dict[str, Any]:
        """The fields of the pattern's cell: the recipe, its steps at the compute budget,
        the optimiser, the proxy's size and the zoo recipe of the target (a retrained zoo
        model gets new patterns)."""
        return {
            **dataclasses.asdict(self),
            "steps": steps(self.target, self.objective, self.layer),
            "budget_dominant_steps": DOMINANT_STEPS,
            "batch": BATCH,
            "weight_decay": WEIGHT_DECAY,
            "noise_images": NOISE_IMAGES,
            "zoo": zoo_keys([self.target]),
        }


@lru_cache(maxsize=4)
def model(spec: str) -> ImageClassifier:
    """A frozen digits classifier (cached per process)."""
    return build_classifier(spec).freeze()


def proxy_loader(proxy: str, seed: int) -> DataLoader:
    """One epoch of full batches of proxy images (digits train split or noise) shuffled by
    ``seed`` (a new order each epoch), labels dropped; the noise images are drawn with
    ``seed`` too."""
    if proxy == "noise":
        images = noise_images("gaussian", NOISE_IMAGES, 1, 32, torch.Generator().manual_seed(seed))
    else:
        images = load_digits_split("train")[0]
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        TensorDataset(images), batch_size=BATCH, shuffle=True, generator=generator, drop_last=True
    )


def proxy_batches(proxy: str, seed: int, count: int) -> Iterator[torch.Tensor]:
    """``count`` proxy batches, epoch after epoch of :func:`proxy_loader`; GD-UAP
    (``none``) sees no data, so its batches are one blank image that only counts steps."""
    if proxy == "none":
        return itertools.repeat(torch.zeros(1, 1, 32, 32), count)
    loader = proxy_loader(proxy, seed)
    epochs = (batch[0] for _ in itertools.count() for batch in loader)
    return itertools.islice(epochs, count)


@cache
def flops_per_step(target: str, objective: str, layer: str = "logits") -> int:
    """Floating-point operations of one step of ``objective`` on a batch of BATCH images
    (forward and backward, through the frozen ``target``: :func:`benchmarks.compute.step_flops`)."""
    net = model(target)
    images = torch.rand(BATCH, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    pattern = UniversalPattern(1, 32, MAIN_EPS / 255)
    loss = PatternObjective(objective, layer)
    return step_flops(lambda: loss(net, pattern, images).backward())


def steps(target: str, objective: str, layer: str = "logits") -> int:
    """The steps of ``objective`` at the compute budget: the whole steps that fit what
    DOMINANT_STEPS steps of the dominant pattern (logits) cost on ``target``."""
    budget = DOMINANT_STEPS * flops_per_step(target, "dominant")
    return steps_within(budget, flops_per_step(target, objective, layer))


def optimise(recipe: PatternRecipe) -> dict[str, torch.Tensor]:
    """Find the pattern of ``recipe`` (its steps at the compute budget, as one pass over
    that many proxy batches): the pattern tensor and the seconds it took."""
    torch.manual_seed(recipe.seed)
    start = time.perf_counter()
    count = steps(recipe.target, recipe.objective, recipe.layer)
    pattern = find_pattern(
        model(recipe.target),
        proxy_batches(recipe.proxy, recipe.seed, count),
        PatternObjective(recipe.objective, recipe.layer),
        eps=recipe.eps / 255,
        clip=recipe.clip,
        epochs=1,
        lr=recipe.lr,
        weight_decay=WEIGHT_DECAY,
        progress=True,
    )
    seconds = time.perf_counter() - start
    return {"pattern": pattern.pattern.detach().cpu(), "seconds": torch.tensor(seconds)}


def pattern_for(recipe: PatternRecipe) -> UniversalPattern:
    """The pattern of ``recipe``, optimised once per recipe and seed (the table cache)."""
    saved = cached_tensors(TABLE, recipe.fields(), lambda: optimise(recipe), SOURCES)
    pattern = UniversalPattern(1, 32, recipe.eps / 255, recipe.clip).requires_grad_(False)
    pattern.pattern.copy_(saved["pattern"])
    return pattern


def control(eps: int, seed: int = SEEDS[0]) -> UniversalPattern:
    """The random-sign control pattern at ``eps`` / 255, drawn with ``seed``."""
    return random_pattern(1, 32, eps / 255, generator=torch.Generator().manual_seed(seed))


def method_pattern(name: str, eps: int, seed: int) -> UniversalPattern:
    """The pattern of a method of :data:`METHODS` (or the control) of the target, at the
    method's tuned learning rate at ``eps`` (:func:`tuned_lr`)."""
    if name == CONTROL:
        return control(eps, seed)
    objective, proxy = METHODS[name]
    lr = tuned_lr(objective, proxy, eps)
    return pattern_for(PatternRecipe(objective=objective, proxy=proxy, eps=eps, seed=seed, lr=lr))


_SCORES: dict[tuple[str, str, float, bool, bytes], dict[str, float]] = {}


def scores(spec: str, pattern: UniversalPattern, split: str = "test") -> dict[str, float]:
    """:func:`score_pattern` of ``pattern`` on ``spec`` and a digits split (the test split
    unless the sweep asks for ``val``), with its labels, computed once per process (the
    tables score a pattern on a model repeatedly)."""
    key = (spec, split, pattern.eps, pattern.clip, pattern.pattern.detach().numpy().tobytes())
    if key not in _SCORES:
        images, labels = load_digits_split(split)
        _SCORES[key] = score_pattern(model(spec), pattern, images, labels)
    return _SCORES[key]


@cache
def lr_sweep(objective: str, proxy: str, eps: int) -> dict[float, float]:
    """The sweep's validation fooling rate at each learning rate tried: :data:`LR` times
    each of :data:`LR_FACTORS`, widened at the grid's edges (:mod:`benchmarks.sweep`), for
    the pattern of the target at :data:`TUNING_SEED` (cached like the table's)."""
    base = PatternRecipe(objective=objective, proxy=proxy, eps=eps, seed=TUNING_SEED)

    def fooling(lr: float) -> float:
        recipe = dataclasses.replace(base, lr=lr)
        return scores(recipe.target, pattern_for(recipe), "val")["fooling_rate"]

    return sweep.sweep(fooling, LR, LR_FACTORS)


def tuned_lr(objective: str, proxy: str, eps: int) -> float:
    """The learning rate of :func:`lr_sweep` with the best fooling rate on the digits
    validation split. A tie keeps the default :data:`LR` where it is among the best: 180
    validation digits give no evidence to move."""
    return sweep.pick(lr_sweep(objective, proxy, eps), LR)


def at_sweep_limit() -> list[str]:
    """The rows whose tuned lr is still on the widened grid's edge (the best may lie
    further out), as ``method at eps``."""
    return [
        f"{name} at {eps}/255"
        for eps in EPSILONS
        for name, (objective, proxy) in METHODS.items()
        if sweep.at_edge(lr_sweep(objective, proxy, eps), LR)
    ]


def method_lr(name: str, eps: int) -> float | None:
    """The tuned learning rate of a method of :data:`METHODS` (None for the control)."""
    return None if name == CONTROL else tuned_lr(*METHODS[name], eps)


def method_steps(name: str) -> str:
    """The steps a method of :data:`METHODS` gets on the target at the compute budget, as
    a table entry (``-`` for the control)."""
    return "-" if name == CONTROL else str(steps(TARGET, METHODS[name][0]))


def run(recipe: PatternRecipe) -> dict[str, float]:
    """Scores of the pattern of ``recipe`` on its target and the digits test split."""
    return scores(recipe.target, pattern_for(recipe))


@dataclasses.dataclass
class Cell(SeedRuns):
    """One row: a pattern's scores at each seed of :data:`SEEDS` (in seed order)."""

    name: str
    runs: list[dict[str, float]]


SCORES = [("fooling_rate", "fooling rate"), ("dominance", "dominance"),
          ("perturbed_acc", "perturbed acc")]  # fmt: skip


def _row(cells: list[str], cell: Cell) -> str:
    numbers = [cell.estimate(metric).format(3) for metric, _ in SCORES]
    return "| " + " | ".join([*cells, *numbers]) + " |"


def _header(*columns: str) -> list[str]:
    titles = [*columns, *(title for _, title in SCORES)]
    aligns = ["---"] * len(columns) + ["---:"] * len(SCORES)
    return ["| " + " | ".join(titles) + " |", "|" + "|".join(aligns) + "|"]


def method_cells(eps: int) -> dict[str, Cell]:
    """The control and the methods run at ``eps`` (all of them at :data:`MAIN_EPS`)."""
    names = [CONTROL, *(METHODS if eps == MAIN_EPS else EVERY_EPS)]
    return {
        name: Cell(name, [scores(TARGET, method_pattern(name, eps, seed)) for seed in SEEDS])
        for name in names
    }


def _lr(lr: float | None) -> str:
    return "-" if lr is None else f"{lr:g}"


def main_table(cells: dict[int, dict[str, Cell]]) -> str:
    """Methods x eps on the target, each at its tuned learning rate (``cells``:
    :func:`method_cells` by eps)."""
    rows = _header("eps", "method", "lr", "steps")
    for eps in EPSILONS:
        rows += [
            _row([f"{eps}/255", name, _lr(method_lr(name, eps)), method_steps(name)], cell)
            for name, cell in cells[eps].items()
        ]
    return "\n".join(rows)


def ablation_table() -> str:
    """The reported settings of the dominant pattern (and SGD-UAP) at MAIN_EPS, each at the
    learning rate tuned for its method in the main table (digits proxy, MAIN_EPS)."""
    rows = _header("method", "setting", "lr", "steps")
    variants: list[tuple[str, str, dict[str, Any]]] = [
        ("dominant pattern", "f = logits, x + p clipped (as above)", {}),
        ("dominant pattern", "x + p not clipped", {"clip": False}),
        ("dominant pattern", "f = penultimate features", {"layer": "penultimate"}),
        ("SGD-UAP", "x + p not clipped", {"objective": "sgd_uap", "clip": False}),
    ]
    for name, setting, options in variants:
        objective = options.get("objective", "dominant")
        lr = tuned_lr(objective, "digits", MAIN_EPS)
        runs = [run(PatternRecipe(**options, seed=seed, lr=lr)) for seed in SEEDS]
        count = steps(TARGET, objective, options.get("layer", "logits"))
        rows.append(_row([name, setting, _lr(lr), str(count)], Cell(name, runs)))
        print(rows[-1], flush=True)
    return "\n".join(rows)


def transfer_cells(patterns: dict[str, list[UniversalPattern]]) -> dict[str, dict[str, Cell]]:
    """Fooling rates of each pattern (one per seed) on each model: ``{pattern: {model: cell}}``."""
    return {
        name: {spec: Cell(name, [scores(spec, p) for p in seeds]) for spec in MODELS}
        for name, seeds in patterns.items()
    }


def _matrix(title: str, cells: dict[str, dict[str, Cell]]) -> list[str]:
    rows = [
        f"| {title} | " + " | ".join(f"on `{spec}`" for spec in MODELS) + " |",
        "|---|" + "---:|" * len(MODELS),
    ]
    for source, by_model in cells.items():
        numbers = [by_model[spec].estimate("fooling_rate").format(3) for spec in MODELS]
        rows.append(f"| {source} | " + " | ".join(numbers) + " |")
    return rows


def dominant_on_each_model() -> dict[str, list[UniversalPattern]]:
    """The dominant pattern (digits proxy, MAIN_EPS) found on each model, one per seed, at
    the learning rate tuned for it on the target (so the target's row is the main table's)."""
    lr = tuned_lr("dominant", "digits", MAIN_EPS)
    return {
        f"`{spec}`": [pattern_for(PatternRecipe(target=spec, seed=seed, lr=lr)) for seed in SEEDS]
        for spec in MODELS
    }


def target_patterns() -> dict[str, list[UniversalPattern]]:
    """The control and every method's pattern of the target at MAIN_EPS, one per seed."""
    return {
        name: [method_pattern(name, MAIN_EPS, seed) for seed in SEEDS]
        for name in [CONTROL, *METHODS]
    }


def transfer_tables() -> str:
    """Fooling rates of patterns found on one model, applied to every model."""
    return "\n".join(
        _matrix("dominant pattern found on", transfer_cells(dominant_on_each_model()))
        + ["", f"Every method's `{TARGET}` pattern on every model:", ""]
        + _matrix(f"pattern found on `{TARGET}`", transfer_cells(target_patterns()))
    )


def downstream_cells() -> tuple[dict[str, Estimate], dict[str, dict[str, Cell]]]:
    """Each head's clean accuracy, and each pattern's fooling rates on the target and on
    each head (``{column: {pattern: cell}}``); at seed ``s`` the head is trained with
    seed ``s`` and attacked with the patterns of seed ``s``."""
    images = load_digits_split("test")[0]
    patterns = target_patterns()
    columns = [f"`{TARGET}` (10 classes)", *(f"+ {task} head" for task in TASKS)]
    clean: dict[str, list[float]] = {column: [] for column in columns}
    fooling: dict[str, dict[str, list[dict[str, float]]]] = {
        column: {name: [] for name in patterns} for column in columns
    }
    for index, seed in enumerate(SEEDS):
        attacked = [model(TARGET), *(downstream_classifier(TARGET, t, seed=seed) for t in TASKS)]
        clean[columns[0]].append(scores(TARGET, control(MAIN_EPS, seed))["clean_acc"])
        for task, head in zip(TASKS, attacked[1:], strict=True):
            clean[f"+ {task} head"].append(downstream_accuracy(head, task))
        for column, classifier in zip(columns, attacked, strict=True):
            for name, seeds in patterns.items():
                if classifier is attacked[0]:
                    fooling[column][name].append(scores(TARGET, seeds[index]))
                else:
                    fooling[column][name].append(score_pattern(classifier, seeds[index], images))
    cells = {
        column: {name: Cell(name, runs) for name, runs in by_name.items()}
        for column, by_name in fooling.items()
    }
    return {column: estimate(values) for column, values in clean.items()}, cells


def downstream_table(clean: dict[str, Estimate], cells: dict[str, dict[str, Cell]]) -> str:
    """Patterns of the 10-class model against heads fine-tuned on other tasks."""
    columns = list(cells)
    rows = [
        "| fooling rate of the pattern | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
        "| (clean accuracy on the task) | "
        + " | ".join(clean[c].format(3) for c in columns)
        + " |",
    ]
    for name in cells[columns[0]]:
        numbers = [cells[c][name].estimate("fooling_rate").format(3) for c in columns]
        rows.append(f"| {name} | " + " | ".join(numbers) + " |")
    return "\n".join(rows)


COMPARISONS = [  # (metric, A, B): the claims of the table at MAIN_EPS
    ("fooling_rate", "dominant pattern on digits", CONTROL),
    ("fooling_rate", "SGD-UAP on digits", CONTROL),
    ("fooling_rate", "cosine UAP on digits", CONTROL),
    ("fooling_rate", "dominant pattern on digits", "SGD-UAP on digits"),
    ("fooling_rate", "dominant pattern on digits", "cosine UAP on digits"),
    ("fooling_rate", "SGD-UAP on digits", "cosine UAP on digits"),
    ("dominance", "dominant pattern on digits", "SGD-UAP on digits"),
    ("dominance", "dominant pattern on digits", "cosine UAP on digits"),
    ("dominance", "dominant pattern on digits", CONTROL),
    ("fooling_rate", "dominant pattern on noise", CONTROL),
    ("fooling_rate", "dominant pattern on noise", "SGD-UAP on noise"),
    ("fooling_rate", "dominant pattern on noise", "cosine UAP on noise"),
    ("fooling_rate", "dominant pattern on noise", "GD-UAP without data"),
    ("fooling_rate", "GD-UAP without data", CONTROL),
    ("fooling_rate", "dominant pattern on digits", "dominant pattern on noise"),
    ("fooling_rate", "SGD-UAP on digits", "SGD-UAP on noise"),
    ("fooling_rate", "cosine UAP on digits", "cosine UAP on noise"),
]
METRIC_NAMES = {"fooling_rate": "fooling rate", "dominance": "dominance"}


def _claim(where: str, metric: str, a: Cell, b: Cell) -> str:
    diff = paired_difference(a.values(metric), b.values(metric))
    return (
        f"- {where}, {METRIC_NAMES[metric]}: {verdict(a.name, b.name, diff)} "
        f"({a.name} minus {b.name}: {diff.format(3)})"
    )


def claims(
    cells: dict[str, Cell], downstream: dict[str, dict[str, Cell]] | None = None
) -> list[str]:
    """What the paired intervals allow at MAIN_EPS: the methods against each other and the
    control on `TARGET` (``cells``: :func:`method_cells` at MAIN_EPS), and the patterns
    found on digits against the control on each downstream head (:func:`downstream_cells`)."""
    where = f"`{TARGET}` at eps {MAIN_EPS}/255"
    lines = [_claim(where, metric, cells[a], cells[b]) for metric, a, b in COMPARISONS]
    for column, by_name in list((downstream or {}).items())[1:]:  # the heads
        for name in ("dominant pattern on digits", "SGD-UAP on digits", "cosine UAP on digits"):
            lines.append(
                _claim(
                    f"{column} at eps {MAIN_EPS}/255",
                    "fooling_rate",
                    by_name[name],
                    by_name[CONTROL],
                )  # fmt: skip
            )
    return lines


def figure(path: Path | None = None, count: int = 8) -> Path:
    """One row per pattern of the target at MAIN_EPS and seed 0 (the control first): the
    pattern amplified (p / (2 eps) + 0.5), then ``count`` perturbed test digits; written
    to ``path`` (default :data:`FIGURE`)."""
    path = FIGURE if path is None else path
    images = load_digits_split("test")[0][::45][:count]
    cells = []
    for seeds in target_patterns().values():
        cells += [seeds[0].picture()[0], *seeds[0](images)]
    grid = make_grid(torch.stack(cells), nrow=count + 1, padding=2, pad_value=1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.nn.functional.interpolate(grid[None], scale_factor=2)[0], path)
    return path


def tables() -> str:
    """Every table, the claims and the figure, as the docs show them."""
    cells = {eps: method_cells(eps) for eps in EPSILONS}
    main = main_table(cells)
    print(main, flush=True)
    ablation, transfer = ablation_table(), transfer_tables()
    clean, downstream = downstream_cells()
    picture = os.path.relpath(figure(), FIGURE.parents[1])
    rows = "; ".join(target_patterns())
    factors = ", ".join(f"{factor:g}" for factor in LR_FACTORS)
    return (
        f"{main}\n\nlr: each method's Adam learning rate at each eps, chosen from {LR:g} x "
        f"({factors}), widened by a factor of 2 while the best is on the grid's edge (at most "
        f"{sweep.MAX_WIDENINGS} times each way), "
        "by the fooling rate on the digits validation split of its pattern at a "
        f"tuning seed ({TUNING_SEED}) that no table cell uses; every cell of the row runs at "
        "it (the settings and transfer tables below use the lr tuned for their method at "
        f"eps {MAIN_EPS}/255 on `{TARGET}`). At the widened grid's limit (the best rate may "
        f"lie further out): {'; '.join(at_sweep_limit()) or 'none'}.\n\n"
        f"What the intervals allow (paired over the {len(SEEDS)} seeds):\n\n"
        + "\n".join(claims(cells[MAIN_EPS], downstream))
        + f"\n\nSettings at eps {MAIN_EPS}/255 (digits train proxy):\n\n{ablation}\n\n"
        f"Transfer at eps {MAIN_EPS}/255 (fooling rate on the digits test split; the diagonal "
        f"is the white-box attack):\n\n{transfer}\n\n"
        f"Downstream at eps {MAIN_EPS}/255: the frozen `{TARGET}` backbone with a new head "
        "fine-tuned on another labelling of the digits (one head per seed), attacked with "
        f"the patterns found on the 10-class model:\n\n"
        f"{downstream_table(clean, downstream)}\n\n"
        f"![patterns and perturbed digits]({picture})\n\n"
        f"The patterns of `{TARGET}` at eps {MAIN_EPS}/255 and seed {SEEDS[0]}, one per row "
        f"({rows}): first the pattern amplified to be seen (p / (2 eps) + 0.5), then "
        "perturbed test digits."
    )


def fooling_figure(folder: Path = FIGURES) -> Path:
    """Fooling rate on the target against eps with its intervals, one line per method run
    at every eps."""
    from benchmarks.figures import curves

    cells = {eps: method_cells(eps) for eps in EPSILONS}
    series, errors = {}, {}
    for name in [CONTROL, *EVERY_EPS]:
        estimates = [cells[eps][name].estimate("fooling_rate") for eps in EPSILONS]
        series[name] = [e.mean for e in estimates]
        errors[name] = [(e.low, e.high) for e in estimates]
    path = folder / "dominant_patterns_fooling_eps.png"
    curves(
        list(EPSILONS),
        series,
        "L-inf eps (/255)",
        f"fooling rate on {TARGET} (digits test split)",
        path,
        errors=errors,
        title=f"Universal patterns of the digits CNN (mean and 95% interval, {len(SEEDS)} seeds)",
    )
    return path


def transfer_figure(folder: Path = FIGURES) -> Path:
    """The dominant pattern found on each model applied to each model (mean over seeds)."""
    from benchmarks.figures import heatmap

    cells = transfer_cells(dominant_on_each_model())
    path = folder / "dominant_patterns_transfer.png"
    heatmap(
        [[cells[f"`{s}`"][t].estimate("fooling_rate").mean for t in MODELS] for s in MODELS],
        [f"found on {spec}" for spec in MODELS],
        [f"on {spec}" for spec in MODELS],
        path,
        "fooling rate",
        title=f"Transfer of the dominant pattern (eps {MAIN_EPS}/255, mean of {len(SEEDS)} seeds)",
    )
    return path


def figures(folder: Path = FIGURES) -> list[Path]:
    """The labelled figures: fooling rate against eps and the transfer heat map."""
    return [fooling_figure(folder), transfer_figure(folder)]


if __name__ == "__main__":
    run_table_command("dominant_patterns_table", tables, figures)
