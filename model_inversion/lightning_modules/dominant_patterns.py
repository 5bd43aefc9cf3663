"""Dominant patterns and label-free universal adversarial patterns as a LightningModule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.dominant_patterns import (
    DEFAULT_EPS,
    LOGITS,
    Objective,
    PatternObjective,
    PatternScores,
    UniversalPattern,
    pattern_logits,
    pattern_optimizer,
    proxy_images,
)
from inversion.metrics.names import unique_names
from inversion.models import ImageClassifier, build_classifier
from model_inversion.callbacks.loggers import log_image
from model_inversion.compiling import compile_in_place
from model_inversion.lightning_modules.base import TargetTask

TARGET = "target"  # the attacked classifier among the scored ones
PICTURE_SIDE = 128  # the pattern is shown magnified to at least this many pixels


class DominantPatterns(TargetTask):
    """Optimise one universal pattern against a frozen classifier; the pattern is the parameter.

    Training batches are proxy images from any DataModule (their labels are never read;
    noise works: ``NoiseDataModule``, or ``ProxyDataModule`` to train on one DataModule and
    evaluate on another). Validation/test batches ``(images, labels)`` give
    ``fooling_rate`` (prediction changed vs the clean prediction), ``dominance``
    (prediction(x + p) = prediction(p)), ``clean_acc`` and ``perturbed_acc`` (labels -1
    ignored), and ``fooling_rate_<spec>``/``dominance_<spec>`` for each classifier in
    ``transfer_to``; the steps return ``{"images": x + p, "labels": y}`` so that
    ``ImageMetrics`` verifiers measure the attack on other models and ``ImageGrid`` shows
    perturbed examples. The pattern itself goes to TensorBoard (``val/pattern``,
    ``test/pattern``) and to ``<run>/images/`` as ``p / (2 eps) + 0.5``.

    Under DDP plain ``ddp`` all-reduces the pattern's gradient: one pattern, data sharded.
    The classifiers are frozen and never saved in checkpoints (rebuilt from their specs).

    Args:
        classifier: The attacked classifier's spec.
        objective: ``dominant`` (1 - cos(f(p), f(x + p))), or a baseline: ``sgd_uap``
            (cross-entropy away from the clean prediction), ``cosine_uap``
            (cos(f(x + p), f(x))) or ``gd_uap`` (data-free: log activation norms of the
            pattern alone).
        layer: ``f`` of ``dominant``/``cosine_uap``: ``logits``, ``penultimate`` or a
            module name (``ImageClassifier.layer_names()``).
        layers: The layers of ``gd_uap`` (default: the classifier's feature layers).
        eps: L-inf radius of the pattern in [0, 1] pixel units (10/255 = 0.0392).
        clip: Clip ``x + p`` to [0, 1].
        canvas: The pattern alone is the image ``canvas + p`` (0: raw pattern).
        image_size: Side of the pattern (the images' side).
        channels: Channels of the pattern (the images' channels).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        transfer_to: Other classifier specs to attack with the same pattern (evaluation).
        channels_last: Run the classifier in channels-last memory format (GPUs).
        pattern_from: Start from the pattern of another run's checkpoint, e.g. to test a
            pattern found on one model against another (``test`` with this option instead
            of ``--ckpt_path``, whose saved hyperparameters would replace the new ones).
        steps_per_training_step: Optimisation steps run in one Lightning training step
            (K, each on its own batch; K > 1 optimises manually, so no gradient
            clipping or accumulation): the Trainer's fixed per-step cost is paid once
            per K steps; the pattern is that of K = 1 (see ``BaseTask.group_steps``).
        compile: ``torch.compile`` the attacked classifier in place before the first
            step (``compiling.compile_in_place``, fixed shapes); the pattern equals the
            eager run's up to float reassociation. Compiling costs seconds up front and
            pays on long runs of large models (``benchmarks.dominant_patterns_speed``).
        **target: ``weights``, ``pretrained``, ``classifier_num_classes``,
            ``input_size`` of the classifier (see :class:`TargetTask`).
    """

    classifier: ImageClassifier  # attached frozen (attach_frozen): not submodules
    transfer_models: dict[str, ImageClassifier]

    def __init__(
        self,
        classifier: str = "digits:cnn",
        objective: Objective = "dominant",
        layer: str = LOGITS,
        layers: list[str] | None = None,
        eps: float = DEFAULT_EPS,
        clip: bool = True,
        canvas: float = 0.0,
        image_size: int = 32,
        channels: int = 1,
        lr: float = 1e-2,
        weight_decay: float = 1e-5,
        transfer_to: list[str] | None = None,
        channels_last: bool = False,
        pattern_from: str | None = None,
        steps_per_training_step: int = 1,
        compile: bool = False,
        **target: Any,
    ) -> None:
        super().__init__(classifier, **target)
        self.group_steps(steps_per_training_step, self._training_steps)

    def configure_models(self) -> None:  # noqa: D102
        hp = self.hparams
        classifier = self._frozen(self.frozen_target())
        self.objective = PatternObjective(hp.objective, hp.layer, tuple(hp.layers or ()))
        self.objective.check(classifier)
        transfers = {
            name: self._frozen(build_classifier(spec))
            for name, spec in unique_names(hp.transfer_to or [], reserved=[TARGET]).items()
        }
        self.attach_frozen("classifier", classifier)  # not submodules: never saved
        object.__setattr__(self, "transfer_models", transfers)  # a dict, by name
        for name, model in transfers.items():
            self.attach_frozen(f"transfer_{name}", model)
        self.pattern = UniversalPattern(hp.channels, hp.image_size, hp.eps, hp.clip, hp.canvas)
        if hp.pattern_from:
            self.pattern.load_from(hp.pattern_from)

    def setup(self, stage: str) -> None:
        """Compile the attacked classifier where ``compile`` asks for it."""
        if self.hparams.compile:
            compile_in_place([self.classifier])
        super().setup(stage)

    def _frozen(self, model: ImageClassifier) -> ImageClassifier:
        model = model.freeze()
        if self.hparams.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def configure_metrics(self) -> None:  # noqa: D102
        def scores() -> nn.ModuleDict:
            models = {TARGET: self.classifier, **self.transfer_models}
            return nn.ModuleDict({name: PatternScores(m.num_classes) for name, m in models.items()})

        self.scores = nn.ModuleDict({"val": scores(), "test": scores()})

    # --- optimisation -----------------------------------------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer:  # noqa: D102
        return pattern_optimizer(self.pattern, self.hparams.lr, self.hparams.weight_decay)

    def _images(self, batch: Any) -> Tensor:
        images = proxy_images(batch)
        self.pattern.check(images)
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def on_train_start(self) -> None:
        """Start inside the L-inf ball (also when resuming)."""
        super().on_train_start()
        self.pattern.project_()

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """One step on proxy images; their labels are never read."""
        loss = self.objective(self.classifier, self.pattern, self._images(batch))
        self._log(loss)
        return loss

    def _log(self, loss: Tensor | None) -> None:
        if loss is not None and self.logs_this_step():
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=1)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """Adam's step, then the projection back into the L-inf ball."""
        super().optimizer_step(*args, **kwargs)
        self.pattern.project_()

    def _training_steps(self, dataloader_iter: Iterator[Any]) -> Tensor | None:
        """K steps of :meth:`training_step` and :meth:`optimizer_step`, one per batch."""
        optimizer = cast(torch.optim.Optimizer, self.optimizers())
        loss = None
        for batch in self.next_batches(dataloader_iter):
            optimizer.zero_grad()
            loss = self.objective(self.classifier, self.pattern, self._images(batch))
            self.manual_backward(loss)
            optimizer.step()
            self.pattern.project_()
        self._log(loss)
        return None if loss is None else loss.detach()

    # --- evaluation ---------------------------------------------------------------------
    def _evaluate(self, batch: Any, stage: str) -> dict[str, Tensor]:
        images = self._images(batch)
        labels = batch[1] if isinstance(batch, (list, tuple)) and len(batch) > 1 else None
        scores = self._scores(stage)
        scores[TARGET].update(*pattern_logits(self.classifier, self.pattern, images), labels)
        for name, model in self.transfer_models.items():
            scores[name].update(*pattern_logits(model, self.pattern, images))
        produced = {"images": self.pattern(images).detach()}
        if labels is not None:
            produced["labels"] = labels
        return produced

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """The perturbed images ``x + p``."""
        return self.pattern(self._images(batch))

    def _scores(self, stage: str) -> dict[str, PatternScores]:
        """The scores of ``stage`` by classifier (a ModuleDict types them as plain modules)."""
        scores = cast(nn.ModuleDict, self.scores[stage])
        return {name: cast(PatternScores, metric) for name, metric in scores.items()}

    def _finish(self, stage: str) -> None:
        scores = self._scores(stage)
        if not scores[TARGET].update_called:
            return
        self.log_and_reset(stage, {"" if n == TARGET else n: s for n, s in scores.items()})
        self._show_pattern(stage)

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        self._finish("val")

    def on_test_epoch_end(self) -> None:  # noqa: D102
        self._finish("test")

    def _show_pattern(self, stage: str) -> None:
        """The amplified pattern to every logger and to a PNG in the run's images folder."""
        trainer = self.trainer
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        picture = self.pattern.picture().float().cpu()
        scale = max(1, -(-PICTURE_SIDE // picture.shape[-1]))
        picture = F.interpolate(picture, scale_factor=scale, mode="nearest")[0]
        png = f"pattern-{stage}-step{trainer.global_step}.png" if trainer.loggers else None
        log_image(trainer, f"{stage}/pattern", picture, png_name=png)
