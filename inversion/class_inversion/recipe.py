"""Class inversion by input optimisation: Plug-In Inversion, DeepInversion, DeepDream.

A :class:`Recipe` names the augmentations, priors and schedule; :class:`ClassInverter`
runs one batch of targets (classes) from noise to images with plain PyTorch::

    model = build_classifier("digits:vit").freeze()
    inverter = ClassInverter(model, RECIPES["pii"], image_size=32, channels=1)
    images = inverter.invert(torch.tensor([0, 1, 2]))   # N x 1 x 32 x 32 in [0, 1]

The Lightning module (``lightning_modules/class_inversion.py``) calls the same
:meth:`ClassInverter.start`/:meth:`ClassInverter.step`, one training step at a time, so a
checkpoint resumes an inversion where it stopped.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args

from inversion.class_inversion.augment import (
    stage_sizes,
)
from inversion.errors import InversionError
from inversion.schedules import warmup_cosine

Init = Literal["uniform", "gaussian"]
INITS: tuple[str, ...] = get_args(Init)
RecipeName = Literal["pii", "deepinversion", "deepdream", "custom"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What one class-inversion method does (every field can be overridden in YAML).

    Attributes:
        jitter: Largest circular shift in pixels at 224 px (scaled to the image size).
        flip: Random horizontal flip (shared by the batch).
        ensemble: Copies of each image per step (each with its own colour shift).
        color_shift: PII's ColorShift on each copy and channel: x * exp(U(-s, s)) + U(-m, m).
        color_shift_mean: m, the range of the colour offset (pixel units).
        color_shift_log_std: s, the range of the log colour scale.
        zoom_stages: PII's centering + zoom stages (1 = optimise at full size only).
        zoom_to_native: Upsample a stage's smaller canvas (bilinear) to the native size
            before the model (the "zoom"); fixed-size models are resized anyway.
        steps_per_stage: Optimisation steps per zoom stage (or of the full-resolution
            stage, after ``low_res_steps``).
        low_res_steps: DeepInversion's first stage at half resolution (2x2 average
            pooling of the model input); 0 = none.
        lr: Adam learning rate (cosine decay to 0 within each stage, restarted per stage).
        betas: Adam betas.
        warmup_steps: Linear warm-up at the start of each stage.
        init: ``uniform`` (U(0,1), PII) or ``gaussian`` (0.5 + 0.2 N(0,1), clipped).
        tv_l2: Weight of the L2 total variation prior.
        l2: Weight of the L2 norm prior.
        bn: Weight of the batch-norm statistics prior (DeepInversion).
        first_bn_multiplier: Extra weight of the first batch-norm layer.
        competition: Weight of Adaptive DeepInversion's competition term 1 - JS(teacher,
            student) at temperature 3 (needs a student classifier; 0 = off, ~0.2 in ADI).
    """

    jitter: int = 0
    flip: bool = False
    ensemble: int = 1
    color_shift: bool = False
    color_shift_mean: float = 1.0
    color_shift_log_std: float = 1.0
    zoom_stages: int = 1
    zoom_to_native: bool = True
    steps_per_stage: int = 400
    low_res_steps: int = 0
    lr: float = 0.01
    betas: tuple[float, float] = (0.5, 0.99)
    warmup_steps: int = 0
    init: str = "uniform"
    tv_l2: float = 0.0
    l2: float = 0.0
    bn: float = 0.0
    first_bn_multiplier: float = 10.0
    competition: float = 0.0

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise InversionError(f"Unknown init {self.init!r}; choose one of {INITS}.")
        if self.ensemble < 1 or self.zoom_stages < 1 or self.steps_per_stage < 1:
            raise InversionError("ensemble, zoom_stages and steps_per_stage must be >= 1.")
        if self.zoom_stages > 1 and self.low_res_steps > 0:
            raise InversionError(
                "Choose zoom_stages (PII) or low_res_steps (DeepInversion), not both."
            )

    def with_options(self, options: dict[str, Any] | None) -> Recipe:
        """A copy with some fields replaced; unknown names are an error that lists them."""
        options = dict(options or {})
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise InversionError(f"Unknown recipe options {unknown}; valid: {sorted(fields)}.")
        if "betas" in options:
            options["betas"] = tuple(options["betas"])
        return dataclasses.replace(self, **options)


RECIPES: dict[str, Recipe] = {
    # Ghiasi et al. 2022, authors' settings: no priors, augmentations do the work.
    "pii": Recipe(
        jitter=32,
        ensemble=4,
        color_shift=True,
        zoom_stages=7,
        steps_per_stage=400,
        lr=0.01,
        betas=(0.5, 0.99),
    ),
    # Yin et al. 2020 (NVlabs code): BN statistics + image priors, 2k steps at 112 + 1k at 224.
    # Their lr 0.25 acts on normalised pixels; ours are in [0, 1]: 0.25 x ImageNet std ~ 0.05.
    "deepinversion": Recipe(
        jitter=30,
        flip=True,
        steps_per_stage=1000,
        low_res_steps=2000,
        lr=0.05,
        betas=(0.5, 0.9),
        warmup_steps=100,
        init="gaussian",
        tv_l2=1e-4,
        l2=1e-5,
        bn=0.01,
    ),
}


# DeepDream: DeepInversion without the batch-norm term.
RECIPES["deepdream"] = dataclasses.replace(RECIPES["deepinversion"], bn=0.0)


def recipe_from(name: str, options: dict[str, Any] | None = None) -> Recipe:
    """A named recipe (``pii``, ``deepinversion``, ``deepdream``, ``custom``) with overrides."""
    if name == "custom":
        return Recipe().with_options(options)
    if name not in RECIPES:
        raise InversionError(f"Unknown recipe {name!r}; choose one of {[*RECIPES, 'custom']}.")
    return RECIPES[name].with_options(options)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of the schedule: the canvas size, the model-input pooling, its steps."""

    size: int
    pool: int
    steps: int


def build_stages(recipe: Recipe, image_size: int) -> list[Stage]:
    """PII's zoom stages, DeepInversion's low-res + full-res stages, or one stage."""
    if recipe.zoom_stages > 1:
        return [
            Stage(size, 1, recipe.steps_per_stage)
            for size in stage_sizes(image_size, recipe.zoom_stages)
        ]
    stages = [Stage(image_size, 2, recipe.low_res_steps)] if recipe.low_res_steps else []
    return [*stages, Stage(image_size, 1, recipe.steps_per_stage)]


def stage_lr(recipe: Recipe, step_in_stage: int, stage_steps: int) -> float:
    """Linear warm-up then cosine decay to 0 within a stage."""
    return warmup_cosine(step_in_stage, stage_steps, recipe.warmup_steps, recipe.lr)
