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
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from inversion.augment import (
    centre_paste,
    circular_jitter,
    color_shift,
    jitter_for_size,
    random_flip,
    replicate,
    stage_sizes,
)
from inversion.errors import InversionError
from inversion.models import ImageClassifier
from inversion.priors import (
    BatchNormStatistics,
    competition_loss,
    l2_prior,
    total_variation_l2,
)

INITS = ("uniform", "gaussian")


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
    if step_in_stage < recipe.warmup_steps:
        return recipe.lr * (step_in_stage + 1) / recipe.warmup_steps
    span = max(stage_steps - recipe.warmup_steps, 1)
    progress = (step_in_stage - recipe.warmup_steps) / span
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * progress))


class ClassInverter:
    """Optimise images so that a frozen classifier assigns them target classes.

    The state of one run (images, Adam, position in the schedule) lives in
    :attr:`state`; :meth:`state_dict`/:meth:`load_state_dict` save and restore it.

    Args:
        classifier: The frozen target (its input is the image in [0, 1]).
        recipe: Augmentations, priors, schedule.
        image_size: Native side length of the produced images.
        channels: Channels of the produced images.
        generator: Source of randomness for the init and augmentations (CPU).
        student: The student of Adaptive DeepInversion's competition term (frozen here).
    """

    def __init__(
        self,
        classifier: ImageClassifier,
        recipe: Recipe,
        image_size: int,
        channels: int = 3,
        generator: torch.Generator | None = None,
        student: ImageClassifier | None = None,
    ) -> None:
        if recipe.competition > 0 and student is None:
            raise InversionError(
                "The competition term (Adaptive DeepInversion) needs a "
                "student classifier; give one or set competition to 0."
            )
        self.classifier = classifier
        self.student = student
        self.recipe = recipe
        self.image_size = image_size
        self.channels = channels
        self.generator = generator
        self.stages = build_stages(recipe, image_size)
        self.total_steps = sum(stage.steps for stage in self.stages)
        self.bn_stats = (
            BatchNormStatistics(classifier.net, recipe.first_bn_multiplier)
            if recipe.bn > 0
            else None
        )
        self.images: Tensor | None = None
        self.labels: Tensor | None = None
        self.optimizer: torch.optim.Adam | None = None
        self.step_index = 0

    # --- schedule -------------------------------------------------------------------
    def stage_at(self, step: int) -> tuple[int, int]:
        """(stage index, step within that stage) of a global step."""
        for index, stage in enumerate(self.stages):
            if step < stage.steps:
                return index, step
            step -= stage.steps
        raise InversionError(f"Step beyond the schedule ({self.total_steps} steps).")

    def _noise(self, n: int, size: int, device: torch.device) -> Tensor:
        shape = (n, self.channels, size, size)
        if self.recipe.init == "uniform":
            noise = torch.rand(shape, generator=self.generator)
        else:
            noise = (0.5 + 0.2 * torch.randn(shape, generator=self.generator)).clamp_(0, 1)
        return noise.to(device)

    def _new_optimizer(self) -> None:
        self.images.requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.images], lr=self.recipe.lr, betas=self.recipe.betas)

    def start(self, labels: Tensor) -> None:
        """Begin a run for these target classes (fresh noise, fresh optimiser)."""
        self.labels = labels
        self.images = self._noise(len(labels), self.stages[0].size, labels.device)
        self.step_index = 0
        self._new_optimizer()

    @property
    def finished(self) -> bool:
        """Whether every step of the schedule has run."""
        return self.step_index >= self.total_steps

    # --- one step ---------------------------------------------------------------------
    def loss(self, images: Tensor, labels: Tensor, pool: int) -> tuple[Tensor, dict[str, Tensor]]:
        """The recipe's loss of one augmented forward pass (and its parts)."""
        recipe = self.recipe
        shift = jitter_for_size(images.shape[-1], recipe.jitter) if recipe.jitter else 0
        view = circular_jitter(images, shift, self.generator) if shift else images
        if recipe.flip:
            view = random_flip(view, generator=self.generator)
        if recipe.zoom_to_native and view.shape[-1] != self.image_size:
            size = (self.image_size, self.image_size)
            view = F.interpolate(view, size=size, mode="bilinear", align_corners=False)
        batch = replicate(view, recipe.ensemble)
        if recipe.color_shift:
            batch = color_shift(
                batch, recipe.color_shift_mean, recipe.color_shift_log_std, self.generator
            )
        if pool > 1:
            batch = F.avg_pool2d(batch, pool)
        logits = self.classifier(batch)
        parts = {"ce": F.cross_entropy(logits, labels.repeat(recipe.ensemble))}
        if recipe.tv_l2:
            parts["tv_l2"] = recipe.tv_l2 * total_variation_l2(view)
        if recipe.l2:
            parts["l2"] = recipe.l2 * l2_prior(view)
        if self.bn_stats is not None:
            parts["bn"] = recipe.bn * self.bn_stats.loss()
        if recipe.competition:
            student_logits = self.student(batch)
            parts["competition"] = recipe.competition * competition_loss(logits, student_logits)
        return sum(parts.values()), parts

    def step(self) -> dict[str, Tensor]:
        """One optimisation step (with a stage transition first where one is due).

        Returns:
            The loss parts (detached device tensors; no host synchronisation).
        """
        if self.images is None:
            raise InversionError("Call start(labels) before step().")
        stage_index, in_stage = self.stage_at(self.step_index)
        stage = self.stages[stage_index]
        if in_stage == 0 and self.step_index > 0:
            self._enter_stage(stage)
        for group in self.optimizer.param_groups:
            group["lr"] = stage_lr(self.recipe, in_stage, stage.steps)
        loss, parts = self.loss(self.images, self.labels, stage.pool)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            self.images.clamp_(0, 1)
        self.step_index += 1
        return {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    def _enter_stage(self, stage: Stage) -> None:
        previous = self.images.detach()
        if stage.size != previous.shape[-1]:
            pad = max(self.image_size // 16, 1)
            self.images = centre_paste(previous, stage.size, pad, self.generator)
        else:
            self.images = previous.clone()
        self._new_optimizer()

    def invert(self, labels: Tensor) -> Tensor:
        """Run the whole schedule for ``labels`` and return the images (N x C x S x S)."""
        self.start(labels)
        while not self.finished:
            self.step()
        return self.result()

    def result(self) -> Tensor:
        """The current images at the native size, detached."""
        images = self.images.detach()
        if images.shape[-1] != self.image_size:
            images = F.interpolate(
                images,
                size=(self.image_size, self.image_size),
                mode="bilinear",
                align_corners=False,
            ).clamp_(0, 1)
        return images

    # --- checkpointing ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Images, labels, optimiser state, step and RNG state (tensors on the CPU)."""
        if self.images is None:
            return {}
        state = {
            "images": self.images.detach().cpu(),
            "labels": self.labels.cpu(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step_index,
        }
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        """Restore a run saved by :meth:`state_dict`."""
        if not state:
            return
        self.labels = state["labels"].to(device)
        self.images = state["images"].to(device)
        self.step_index = int(state["step"])
        self._new_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        if "generator" in state and self.generator is not None:
            self.generator.set_state(state["generator"])
