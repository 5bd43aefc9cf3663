"""The robustness-as-a-prior representation tools as a LightningModule: wiring only."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from inversion import seeds
from inversion.data.batches import split_batch
from inversion.errors import InversionError
from inversion.models import PENULTIMATE, ImageClassifier
from inversion.robust_prior import (
    DEFAULT_ALPHAS,
    SEED_IMAGES,
    TOOL_DEFAULTS,
    TOOLS,
    SeedImage,
    Tool,
    apply_tool,
    representation,
    tool_attack,
)
from model_inversion.lightning_modules.base import TargetTask


class RepresentationTools(TargetTask):
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
        tool: ``invert``, ``visualize``, ``manipulate`` or ``interpolate``.
        layer: The representation: ``penultimate`` or any named layer.
        step_size: L2 step of the PGD (default per tool, for 32 px digits).
        steps: PGD iterations (default per tool).
        seed_image: ``gray`` (0.5 + N(0, 1) / 20) or ``other_image`` (the next image of
            the batch) as the start of ``invert``/``interpolate``.
        features: Components to visualise or add (``visualize``/``manipulate``).
        alphas: Interpolation weights (``interpolate``).
        seed: Seed of the gray seeds' noise (``derive_seed(seed, batch, rank)``).
        progress: Show a progress bar over the PGD iterations of each batch.
        **target: ``weights``, ``pretrained``, ``classifier_num_classes``,
            ``input_size`` of the classifier (see :class:`TargetTask`).
    """

    classifier: ImageClassifier  # attached frozen (attach_frozen): not a submodule

    def __init__(
        self,
        classifier: str = "digits:cnn-robust",
        tool: Tool = "invert",
        layer: str = PENULTIMATE,
        step_size: float | None = None,
        steps: int | None = None,
        seed_image: SeedImage = "gray",
        features: list[int] | None = None,
        alphas: list[float] | None = None,
        seed: int = 0,
        progress: bool = False,
        **target: Any,
    ) -> None:
        super().__init__(classifier, **target)

    def configure_models(self) -> None:  # noqa: D102
        hp = self.hparams
        if hp.tool not in TOOLS:
            raise InversionError(f"Unknown tool {hp.tool!r}; choose one of {TOOLS}.")
        if hp.seed_image not in SEED_IMAGES:
            raise InversionError(
                f"Unknown seed_image {hp.seed_image!r}; choose one of {SEED_IMAGES}."
            )
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
        self.alphas = list(hp.alphas) if hp.alphas is not None else list(DEFAULT_ALPHAS)

    def configure_optimizers(self) -> None:
        """Nothing is trained."""
        return None

    # --- the tools -----------------------------------------------------------------------
    def _step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        hp = self.hparams
        images, labels = split_batch(batch)
        outputs = apply_tool(
            self.classifier,
            hp.tool,
            images,
            labels,
            self.attack,
            seeds.generator(hp.seed, batch_idx, self.global_rank, device=self.device),
            hp.layer,
            hp.seed_image,
            hp.features,
            self.alphas,
            hp.progress,
        )
        if "repr_distance" in outputs:
            self.log("repr_distance", outputs.pop("repr_distance").mean(), sync_dist=True)
            self.log("agree_target", outputs.pop("agree_target").mean(), sync_dist=True)
        return outputs

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._step(batch, batch_idx)

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._step(batch, batch_idx)

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._step(batch, batch_idx)


__all__ = ["RepresentationTools"]
