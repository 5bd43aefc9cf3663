"""The class inverter: one batch of targets from noise to images, step by step (plain PyTorch)."""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from inversion.class_inversion.augment import (
    centre_paste,
    circular_jitter,
    color_shift,
    jitter_for_size,
    random_flip,
    replicate,
)
from inversion.class_inversion.recipe import Recipe, Stage, build_stages, stage_lr
from inversion.errors import InversionError
from inversion.models import ImageClassifier
from inversion.priors import (
    BatchNormStatistics,
    competition_loss,
    l2_prior,
    total_variation_l2,
)


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
        # iterate "best": the images of the lowest total loss so far, and that loss
        self.best_images: Tensor | None = None
        self.best_loss: Tensor | None = None

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
        elif self.recipe.init == "gaussian":
            noise = (0.5 + 0.2 * torch.randn(shape, generator=self.generator)).clamp_(0, 1)
        else:  # normalised_gaussian: N(0, 1) in the classifier's normalised space
            mean, std = (
                self._channel_stats(stat.detach().float().cpu())
                for stat in (self.classifier.mean, self.classifier.std)
            )
            noise = (mean + std * torch.randn(shape, generator=self.generator)).clamp_(0, 1)
        return noise.to(device)

    def _channel_stats(self, stat: Tensor) -> Tensor:
        """A 1 x C' x 1 x 1 normalisation statistic for our channels (averaged if they differ)."""
        stat = stat.reshape(1, -1, 1, 1)
        return stat if stat.shape[1] == self.channels else stat.mean(dim=1, keepdim=True)

    def _new_optimizer(self, images: Tensor) -> torch.optim.Adam:
        """A fresh Adam over ``images`` (the current images), kept as ``self.optimizer``."""
        images.requires_grad_(True)
        self.optimizer = torch.optim.Adam([images], lr=self.recipe.lr, betas=self.recipe.betas)
        return self.optimizer

    def _run(self) -> tuple[Tensor, Tensor, torch.optim.Adam]:
        """The current run's images, labels and optimiser."""
        if self.images is None or self.labels is None or self.optimizer is None:
            raise InversionError("Call start(labels) before step() or result().")
        return self.images, self.labels, self.optimizer

    def start(self, labels: Tensor) -> None:
        """Begin a run for these target classes (fresh noise, fresh optimiser)."""
        self.labels = labels
        self.images = self._noise(len(labels), self.stages[0].size, labels.device)
        self.step_index = 0
        self._new_optimizer(self.images)
        self._reset_best(self.images)

    @property
    def finished(self) -> bool:
        """Whether every step of the schedule has run."""
        return self.step_index >= self.total_steps

    # --- one step ---------------------------------------------------------------------
    def jitter_at(self, size: int, pool: int) -> int:
        """The largest shift on a view of ``size`` pixels (after ``pool`` x ``pool`` pooling)."""
        recipe = self.recipe
        if not recipe.jitter:
            return 0
        if recipe.jitter_scale == "stage":
            return jitter_for_size(size, recipe.jitter)
        # native: the reference's constant shift, halved on the pooled image as NVlabs does
        return jitter_for_size(self.image_size, recipe.jitter) // pool

    def loss(self, images: Tensor, labels: Tensor, pool: int) -> tuple[Tensor, dict[str, Tensor]]:
        """The recipe's loss of one augmented forward pass (and its parts).

        The order of the reference codes: pool (DeepInversion's half-resolution stage),
        jitter, flip; the TV and L2 priors act on that view (normalised, or in [0, 1]);
        then (PII) the zoom to the native size, the ensemble and ColorShift.
        """
        recipe = self.recipe
        view = F.avg_pool2d(images, pool) if pool > 1 else images
        shift = self.jitter_at(view.shape[-1], pool)
        if shift:
            view = circular_jitter(view, shift, self.generator)
        if recipe.flip:
            view = random_flip(view, generator=self.generator)
        parts: dict[str, Tensor] = {}
        if recipe.tv_l2 or recipe.l2:
            prior_view = (
                self.classifier.normalize(view) if recipe.prior_space == "normalised" else view
            )
            if recipe.tv_l2:
                parts["tv_l2"] = recipe.tv_l2 * total_variation_l2(prior_view)
            if recipe.l2:
                parts["l2"] = recipe.l2 * l2_prior(prior_view)
        if recipe.zoom_to_native and pool == 1 and view.shape[-1] != self.image_size:
            size = (self.image_size, self.image_size)
            view = F.interpolate(view, size=size, mode="bilinear", align_corners=False)
        batch = replicate(view, recipe.ensemble)
        if recipe.color_shift:
            batch = color_shift(
                batch, recipe.color_shift_mean, recipe.color_shift_log_std, self.generator
            )
        logits = self.classifier(batch)
        parts = {"ce": F.cross_entropy(logits, labels.repeat(recipe.ensemble)), **parts}
        if self.bn_stats is not None:
            parts["bn"] = recipe.bn * self.bn_stats.loss()
        if recipe.competition:
            if self.student is None:  # refused in __init__ too
                raise InversionError("The competition term needs a student classifier.")
            student_logits = self.student(batch)
            parts["competition"] = recipe.competition * competition_loss(
                logits, student_logits, form=recipe.competition_form
            )
        return cast(Tensor, sum(parts.values())), parts  # parts has "ce": a tensor

    def step(self) -> dict[str, Tensor]:
        """One optimisation step (with a stage transition first where one is due).

        Returns:
            The loss parts (detached device tensors; no host synchronisation).
        """
        self._run()  # started?
        stage_index, in_stage = self.stage_at(self.step_index)
        stage = self.stages[stage_index]
        if in_stage == 0 and self.step_index > 0:
            self._enter_stage(stage)
        images, labels, optimizer = self._run()  # a new stage has new images and optimiser
        for group in optimizer.param_groups:
            group["lr"] = stage_lr(self.recipe, in_stage, stage.steps)
        loss, parts = self.loss(images, labels, stage.pool)
        if self.recipe.iterate == "best":
            self._keep_if_best(images, loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            images.clamp_(0, 1)
        self.step_index += 1
        return {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    def _enter_stage(self, stage: Stage) -> None:
        previous = self._run()[0].detach()
        if stage.size != previous.shape[-1]:
            pad = max(self.image_size // 16, 1)
            self.images = centre_paste(previous, stage.size, pad, self.generator)
            self._reset_best(self.images)  # losses at another size do not compare
        else:
            self.images = previous.clone()
        self._new_optimizer(self.images)

    # --- the best iterate ---------------------------------------------------------------
    def _reset_best(self, images: Tensor) -> None:
        """Start tracking the best iterate afresh (nothing recorded: loss +inf)."""
        if self.recipe.iterate != "best":
            return
        self.best_images = images.detach().clone()
        self.best_loss = torch.full((), float("inf"), device=images.device)

    @torch.no_grad()
    def _keep_if_best(self, images: Tensor, loss: Tensor) -> None:
        """Keep ``images`` (before this step's update) if ``loss`` is the lowest so far.

        On the device, without a host synchronisation. A NaN loss is never the best.
        The NVlabs code keeps, by the same comparison, the images after that step's
        update (one step later); these are the images the recorded loss belongs to.
        """
        if self.best_images is None or self.best_loss is None:
            self._reset_best(images)
        best_images, best_loss = cast(Tensor, self.best_images), cast(Tensor, self.best_loss)
        value = loss.detach().float()
        better = value < best_loss
        self.best_images = torch.where(better, images.detach(), best_images)
        self.best_loss = torch.where(better, value, best_loss)

    def invert(self, labels: Tensor) -> Tensor:
        """Run the whole schedule for ``labels`` and return the images (N x C x S x S)."""
        self.start(labels)
        while not self.finished:
            self.step()
        return self.result()

    def result(self) -> Tensor:
        """The run's images at the native size, detached: the last or the best iterate.

        With ``iterate: best``, the images of the step with the lowest total loss (within
        the current canvas size); otherwise the current images.
        """
        images = self._run()[0].detach()
        if self.recipe.iterate == "best" and self.best_images is not None:
            images = self.best_images
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
        images, labels, optimizer = self._run()
        state = {
            "images": images.detach().cpu(),
            "labels": labels.cpu(),
            "optimizer": optimizer.state_dict(),
            "step": self.step_index,
        }
        if self.best_images is not None and self.best_loss is not None:
            state["best_images"] = self.best_images.detach().cpu()
            state["best_loss"] = self.best_loss.detach().cpu()
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
        self._new_optimizer(self.images).load_state_dict(state["optimizer"])
        self.best_images = self.best_loss = None
        if "best_images" in state:
            self.best_images = state["best_images"].to(device)
            self.best_loss = state["best_loss"].to(device)
        if "generator" in state and self.generator is not None:
            self.generator.set_state(state["generator"])
