"""Class inversion by input optimisation: Plug-In Inversion, DeepInversion, DeepDream.

A :class:`Recipe` names the augmentations, priors and schedule; :class:`ClassInverter`
runs one batch of targets (classes) from noise to images with plain PyTorch::

    model = build_classifier("digits:vit").freeze()
    inverter = ClassInverter(model, RECIPES["pii"], image_size=32, channels=1)
    images = inverter.invert(torch.tensor([0, 1, 2]))   # N x 1 x 32 x 32 in [0, 1]

The Lightning module (``model_inversion/lightning_modules/class_inversion.py``) calls the same
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
from inversion.priors import COMPETITION_FORMS, CompetitionForm
from inversion.schedules import warmup_cosine

Init = Literal["uniform", "gaussian", "normalised_gaussian"]
INITS: tuple[str, ...] = get_args(Init)
RecipeName = Literal["pii", "deepinversion", "deepdream", "custom"]
PriorSpace = Literal["normalised", "pixel"]
Iterate = Literal["best", "last"]
JitterScale = Literal["native", "stage"]
# The fields that name a choice, and their choices (checked when a recipe is built).
CHOICES: dict[str, tuple[str, ...]] = {
    "init": INITS,
    "prior_space": get_args(PriorSpace),
    "iterate": get_args(Iterate),
    "jitter_scale": get_args(JitterScale),
    "competition_form": COMPETITION_FORMS,
}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What one class-inversion method does (every field can be overridden in YAML).

    The named recipes do what the authors' code does (NVlabs DeepInversion, the PII
    authors' repository); each departure from it is a field below, named in the README.

    Attributes:
        jitter: Largest circular shift in pixels at 224 px (scaled to the image size).
        jitter_scale: ``native`` (the reference codes): the shift is scaled from 224 px
            to the native image size and kept at every zoom stage (halved on
            DeepInversion's pooled image, as its code does); ``stage``: scaled to each
            zoom stage's canvas (smaller shifts on the small canvases).
        flip: Random horizontal flip (shared by the batch). DeepInversion's code flips;
            it changes what a digit is, so the digits configs turn it off.
        ensemble: Copies of each image per step (each with its own colour shift).
        color_shift: PII's ColorShift on each copy and channel: x * exp(U(-s, s)) + U(-m, m).
        color_shift_mean: m, the range of the colour offset (pixel units).
        color_shift_log_std: s, the range of the log colour scale.
        zoom_stages: PII's centering + zoom stages (1 = optimise at full size only).
        zoom_to_native: Upsample a stage's smaller canvas (bilinear) to the native size
            before every model. False (the PII code): a CNN gets the small canvas itself;
            a fixed-size model (ViT, ResMLP) is resized to its input size by its wrapper
            (the PII code's upsampling for transformers).
        steps_per_stage: Optimisation steps per zoom stage (or of the full-resolution
            stage, after ``low_res_steps``).
        low_res_steps: DeepInversion's first stage at half resolution (2x2 average
            pooling of the image; jitter, flip and priors act on the pooled image);
            0 = none.
        lr: Adam learning rate (cosine decay to 0 within each stage, restarted per stage).
        betas: Adam betas.
        warmup_steps: Linear warm-up at the start of each stage.
        init: ``uniform`` (U(0,1), PII), ``gaussian`` (0.5 + 0.2 N(0,1), clipped) or
            ``normalised_gaussian`` (N(0,1) in the classifier's normalised space, i.e.
            mean + std N(0,1) in pixels, clipped: DeepInversion's code).
        tv_l2: Weight of the L2 total variation prior.
        l2: Weight of the L2 norm prior.
        prior_space: What the TV and L2 priors act on: ``normalised`` (the image as the
            classifier normalises it, as DeepInversion's code does: the L2 prior pulls to
            the normalisation mean) or ``pixel`` (the image in [0, 1]: L2 pulls to black).
        bn: Weight of the batch-norm statistics prior (DeepInversion).
        first_bn_multiplier: Extra weight of the first batch-norm layer.
        competition: Weight of Adaptive DeepInversion's competition term 1 - JS(teacher,
            student) at temperature 3 (needs a student classifier; 0 = off, ~0.2 in ADI).
        competition_form: ``clamped`` (the NVlabs code: probabilities clamped to
            [0.01, 0.99]) or ``exact`` (the unclamped JS divergence); see
            :func:`inversion.priors.competition_loss`.
        iterate: The images a run returns: ``last`` (the final iterate, PII's code) or
            ``best`` (the images of the step with the lowest total loss, DeepInversion's
            code; tracked on the device, restarted when a zoom stage changes the size).
    """

    jitter: int = 0
    jitter_scale: JitterScale = "native"
    flip: bool = False
    ensemble: int = 1
    color_shift: bool = False
    color_shift_mean: float = 1.0
    color_shift_log_std: float = 1.0
    zoom_stages: int = 1
    zoom_to_native: bool = False
    steps_per_stage: int = 400
    low_res_steps: int = 0
    lr: float = 0.01
    betas: tuple[float, float] = (0.5, 0.99)
    warmup_steps: int = 0
    init: Init = "uniform"
    tv_l2: float = 0.0
    l2: float = 0.0
    prior_space: PriorSpace = "normalised"
    bn: float = 0.0
    first_bn_multiplier: float = 10.0
    competition: float = 0.0
    competition_form: CompetitionForm = "clamped"
    iterate: Iterate = "last"

    def __post_init__(self) -> None:
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise InversionError(f"Unknown {name} {value!r}; choose one of {choices}.")
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
    # Ghiasi et al. 2022, the authors' code: no priors, augmentations do the work; jitter
    # 32 px at every zoom stage; CNNs see the small canvas; the last iterate.
    "pii": Recipe(
        jitter=32,
        ensemble=4,
        color_shift=True,
        zoom_stages=7,
        steps_per_stage=400,
        lr=0.01,
        betas=(0.5, 0.99),
    ),
    # Yin et al. 2020 (NVlabs code): BN statistics + image priors on the normalised image,
    # 2k steps at 112 + 1k at 224, flips, the best-loss iterate. Their lr 0.25 acts on
    # normalised pixels; ours are in [0, 1]: 0.25 x ImageNet std ~ 0.05.
    "deepinversion": Recipe(
        jitter=30,
        flip=True,
        steps_per_stage=1000,
        low_res_steps=2000,
        lr=0.05,
        betas=(0.5, 0.9),
        warmup_steps=100,
        init="normalised_gaussian",
        tv_l2=1e-4,
        l2=1e-5,
        bn=0.01,
        iterate="best",
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
