"""The robustness-as-a-prior representation tools as a LightningModule: wiring only."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from inversion.errors import InversionError
from inversion.metrics.reconstruction import agreement
from inversion.models import PENULTIMATE
from inversion.robust_prior import (
    gray_seeds,
    interpolate_representations,
    invert_representation,
    manipulate_features,
    representation,
    representation_distance,
    tool_attack,
    top_features,
    visualize_features,
)
from lightning_modules.base import BaseTask

#: Default (step size, steps) of each tool for 32 x 32 digits; the paper's values at
#: 224 x 224 (step 1 with 10,000 / 200 iterations, step 0.1 with 800) are in configs/paper.
TOOL_DEFAULTS = {
    "invert": (0.1, 500),
    "visualize": (0.1, 200),
    "manipulate": (0.02, 200),
    "interpolate": (0.1, 500),
}
SEEDS = ("gray", "other_image")


class RepresentationTools(BaseTask):
    """Representation inversion, feature visualisation, manipulation and interpolation.

    Nothing is trained: run it with ``test`` (or ``validate``/``predict``) on any
    DataModule of images; each batch is processed by the chosen ``tool`` and the step
    returns images for the callbacks (``ImageMetrics``, ``ImageGrid``):

    - ``invert``: images whose representation matches each batch image's, from gray
      seeds (or the next image of the batch, ``seed_image: other_image``); returns
      ``{"images", "labels", "originals"}`` (so PSNR, SSIM, verifier top-1 and agreement
      are measured) and logs ``repr_distance`` (the final normalised distance) and
      ``agree_target`` (the classifier gives the inversion its original's class).
    - ``visualize``: from gray seeds, maximise one component of the representation: by
      default each batch image's most activated one, labelled with the image's class
      (``features`` lists components instead, cycled over the batch; no labels then).
    - ``manipulate``: add a feature to each real image: by default the most activated
      component of the next image in the batch (labelled with that image's class, so
      the verifiers tell whether the image moved towards it); returns ``originals`` too.
    - ``interpolate``: invert mixtures of the representations of each image and the
      next one; returns rows ``[image, alphas..., next image]`` (set ``ImageGrid``'s
      ``per_class`` to ``len(alphas) + 2``).

    Args:
        classifier: Classifier spec (e.g. ``digits:cnn-robust``); frozen, never saved.
        weights: Local weights file for the classifier (e.g. a robustness-library
            checkpoint of a robust ImageNet ResNet-50).
        pretrained: Download pretrained classifier weights (timm/torchvision).
        classifier_num_classes: Classes of the classifier's head (default: its own).
        input_size: Input size of fixed-size classifiers.
        tool: ``invert``, ``visualize``, ``manipulate`` or ``interpolate``.
        layer: The representation: ``penultimate`` or any named layer.
        step_size: L2 step of the PGD (default per tool, for 32 px digits).
        steps: PGD iterations (default per tool).
        seed_image: ``gray`` (0.5 + N(0, 1) / 20) or ``other_image`` (the next image of
            the batch) as the start of ``invert``/``interpolate``.
        features: Components to visualise or add (``visualize``/``manipulate``).
        alphas: Interpolation weights (``interpolate``).
        seed: Seed of the gray seeds' noise (per batch and process).
        progress: Show a progress bar over the PGD iterations of each batch.
    """

    def __init__(
        self,
        classifier: str = "digits:cnn-robust",
        weights: str | None = None,
        pretrained: bool | None = None,
        classifier_num_classes: int | None = None,
        input_size: int | None = None,
        tool: str = "invert",
        layer: str = PENULTIMATE,
        step_size: float | None = None,
        steps: int | None = None,
        seed_image: str = "gray",
        features: list[int] | None = None,
        alphas: list[float] | None = None,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        super().__init__()

    def configure_models(self) -> None:  # noqa: D102
        hp = self.hparams
        if hp.tool not in TOOL_DEFAULTS:
            raise InversionError(f"Unknown tool {hp.tool!r}; choose one of {list(TOOL_DEFAULTS)}.")
        if hp.seed_image not in SEEDS:
            raise InversionError(f"Unknown seed_image {hp.seed_image!r}; choose one of {SEEDS}.")
        if hp.features is not None and not hp.features:
            raise InversionError("features is empty; list components, or leave it unset.")
        classifier = self.frozen_target()
        self.attach_frozen("classifier", classifier)
        probe = torch.full((1, classifier.in_chans, *classifier.input_size), 0.5)
        width = representation(classifier, probe, hp.layer).shape[1]  # checks the layer name
        bad = [k for k in hp.features or [] if not 0 <= k < width]
        if bad:
            raise InversionError(f"features {bad} are outside 0..{width - 1} of {hp.layer!r}.")
        default_step, default_steps = TOOL_DEFAULTS[hp.tool]
        self.attack = tool_attack(
            hp.step_size if hp.step_size is not None else default_step,
            hp.steps if hp.steps is not None else default_steps,
        )
        self.alphas = list(hp.alphas) if hp.alphas is not None else [0.0, 0.25, 0.5, 0.75, 1.0]

    def configure_optimizers(self) -> None:
        """Nothing is trained."""
        return None

    # --- the tools -----------------------------------------------------------------------
    def _generator(self, batch_idx: int) -> torch.Generator:
        world = self._trainer.world_size if self._trainer is not None else 1
        seed = (self.hparams.seed * 1_000_003 + batch_idx) * world + self.global_rank
        return torch.Generator(device=self.device).manual_seed(seed)

    def _seeds(self, images: Tensor, batch_idx: int) -> Tensor:
        if self.hparams.seed_image == "other_image":
            return images.roll(1, dims=0)
        return gray_seeds(images.shape, self._generator(batch_idx), images.device)

    def _features(self, images: Tensor) -> Tensor:
        features = self.hparams.features
        if features is None:
            return top_features(self.classifier, images, self.hparams.layer)
        index = torch.arange(len(images), device=images.device) % len(features)
        return torch.as_tensor(features, device=images.device)[index]

    def run_tool(self, images: Tensor, labels: Tensor | None, batch_idx: int) -> dict[str, Tensor]:
        """Apply the tool to a batch; returns the outputs dict of the callbacks' contract."""
        hp, model, progress = self.hparams, self.classifier, self.hparams.progress
        explicit = hp.features is not None
        if hp.tool == "invert":
            targets = representation(model, images, hp.layer)
            inverted = invert_representation(
                model, targets, self._seeds(images, batch_idx), self.attack, hp.layer, progress
            )
            distance = representation_distance(model, inverted, targets, hp.layer)
            self.log("repr_distance", distance.mean(), sync_dist=True)
            self.log("agree_target", agreement(model, inverted, images).mean(), sync_dist=True)
            return {"images": inverted, "labels": labels, "originals": images}
        if hp.tool == "visualize":
            seeds = gray_seeds(images.shape, self._generator(batch_idx), images.device)
            visual = visualize_features(
                model, self._features(images), seeds, self.attack, hp.layer, progress
            )
            return {"images": visual, "labels": None if explicit else labels}
        if hp.tool == "manipulate":
            donors = images.roll(1, dims=0)
            donor_labels = None if explicit or labels is None else labels.roll(1, dims=0)
            changed = manipulate_features(
                model, images, self._features(donors), self.attack, hp.layer, progress
            )
            return {"images": changed, "labels": donor_labels, "originals": images}
        second = images.roll(-1, dims=0)
        mixed = interpolate_representations(
            model,
            images,
            second,
            self.alphas,
            self._seeds(images, batch_idx),
            self.attack,
            hp.layer,
            progress,
        )
        rows = torch.cat([images.unsqueeze(1), mixed, second.unsqueeze(1)], dim=1)
        return {"images": rows.flatten(0, 1)}

    def _step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        images = batch[0] if isinstance(batch, list | tuple) else batch
        labels = batch[1] if isinstance(batch, list | tuple) and len(batch) > 1 else None
        if labels is not None and (labels < 0).all():
            labels = None  # unlabelled data (e.g. noise, flat folders)
        outputs = self.run_tool(images, labels, batch_idx)
        return {k: v for k, v in outputs.items() if v is not None}

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._step(batch, batch_idx)

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._step(batch, batch_idx)

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._step(batch, batch_idx)


__all__ = ["RepresentationTools"]
