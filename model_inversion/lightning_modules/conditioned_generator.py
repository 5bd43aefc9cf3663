"""Network inversion with a conditioned generator (Suhail and Sethi, 2024): wiring only."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from inversion.conditioned_generator import (
    GENERATOR_KEY,
    ClassDiversity,
    Conditioning,
    CosinePairs,
    GeneratorRecipe,
    generator_step,
)
from inversion.errors import InversionError
from inversion.models import ImageClassifier
from inversion.schedules import warmup_cosine_scheduler
from inversion.seeds import derive_seed
from model_inversion.compiling import compile_in_place
from model_inversion.lightning_modules.base import TargetTask

MAX_PIXEL_SIZE = 64  # diversity's pixel distance is measured at most at 64 x 64
RECIPE = GeneratorRecipe()  # the defaults of the recipe's init args


class ConditionedGeneratorInversion(TargetTask):
    """Train a generator G(z, c) whose images a frozen classifier assigns to class c.

    The Lightning shell of ``inversion.conditioned_generator.train_generator``: the same
    generator (initialised from ``seed``), step (``generator_step``), Adam and warm-up +
    cosine schedule over the run. Pairs with ``LatentsDataModule`` (batches of latents,
    balanced labels and the hidden encodings' noise). Only the generator is trained and
    saved; the classifier is rebuilt from its spec. ``validation_step``/``test_step``
    return ``{"images", "labels"}`` (the conditioning labels) for
    ``ImageMetrics``/``ImageGrid``, and the module logs ``target_top1`` (the target's
    accuracy on the samples), ``feature_cosine`` and ``pixel_distance`` (within-class
    diversity, features of ``feature_layer``). Samples are drawn with dropout on when
    ``dropout_at_sampling`` (the paper's setting), from fixed draws and a fixed dropout
    seed, so epochs compare. Plain ``ddp`` works.

    The training dropout masks come from the global RNG (seed it, e.g. with
    ``seed_everything``); checkpoints carry its state (``BaseTask``), so a resumed run
    continues exactly.

    Args:
        classifier: Target classifier spec (frozen; not saved in checkpoints).
        image_size: Side of the generated images (s x 2^n with s in 4..7: 32, 224, ...).
        channels: Channels of the generated images.
        latent_dim: Size of the latent z.
        conditioning: ``onehot`` (baseline), ``vector`` (soft), ``matrix`` (hot matrix) or
            ``vector_matrix``.
        width: Channels of the generator's last stage (they double per stage inwards).
        max_width: Largest channel count of the generator.
        dropout: Dropout rate after every hidden layer of the generator.
        dropout_at_sampling: Keep dropout on when sampling (validation, test, predict).
        soft_scale: Inverse temperature of the soft conditioning vector.
        matrix_size: Side of the hot matrix (default K, or ceil(sqrt(K)) above 32 classes).
        kl_weight: Weight of KL(conditioning vector || softmax(logits)) (alpha).
        ce_weight: Weight of the cross-entropy with the label (beta).
        cosine_weight: Weight of the mean pairwise feature cosine (gamma).
        cosine_pairs: ``all`` pairs of a batch (the paper) or ``same_class`` pairs.
        orthogonality_weight: Weight of the feature Gram-to-identity penalty.
        tv_weight: Weight of the L2 total-variation prior.
        l2_weight: Weight of the image L2-norm prior.
        feature_layer: Classifier layer of the feature terms and of ``feature_cosine``.
        lr: Adam learning rate (linear warm-up, then cosine decay to 0 over the run).
        betas: Adam betas.
        weight_decay: Adam weight decay.
        warmup_steps: Steps of linear learning-rate warm-up.
        channels_last: Run generator and classifier in channels-last memory format.
        seed: Seed of the generator's initialisation and of the dropout masks of
            validation/test samples.
        steps_per_training_step: Optimisation steps run in one Lightning training step
            (K, each on its own batch of latents; K > 1 optimises manually and steps the
            schedule itself, so no gradient clipping or accumulation): the Trainer's
            fixed per-step cost is paid once per K steps; the weights are those of
            K = 1 (see ``BaseTask.group_steps``).
        compile: ``torch.compile`` the generator and the classifier in place before the
            first step (``compiling.compile_in_place``, fixed shapes; dropout draws as
            in eager mode); the weights equal the eager run's up to float
            reassociation. Compiling costs seconds up front and pays on long runs of
            large models (``benchmarks.conditioned_generator_speed``).
        **target: ``weights``, ``pretrained``, ``classifier_num_classes``,
            ``input_size`` of the classifier (see :class:`TargetTask`).
    """

    classifier: ImageClassifier  # attached frozen (attach_frozen): not a submodule

    lr_schedule = True  # warm-up, then cosine decay (logged by a LearningRateMonitor)

    def __init__(
        self,
        classifier: str = "digits:cnn",
        image_size: int = RECIPE.image_size,
        channels: int = RECIPE.channels,
        latent_dim: int = RECIPE.latent_dim,
        conditioning: Conditioning = RECIPE.conditioning,
        width: int = RECIPE.width,
        max_width: int = RECIPE.max_width,
        dropout: float = RECIPE.dropout,
        dropout_at_sampling: bool = RECIPE.dropout_at_sampling,
        soft_scale: float = RECIPE.soft_scale,
        matrix_size: int | None = RECIPE.matrix_size,
        kl_weight: float = RECIPE.kl_weight,
        ce_weight: float = RECIPE.ce_weight,
        cosine_weight: float = RECIPE.cosine_weight,
        cosine_pairs: CosinePairs = RECIPE.cosine_pairs,
        orthogonality_weight: float = RECIPE.orthogonality_weight,
        tv_weight: float = RECIPE.tv_weight,
        l2_weight: float = RECIPE.l2_weight,
        feature_layer: str = RECIPE.feature_layer,
        lr: float = RECIPE.lr,
        betas: tuple[float, float] = RECIPE.betas,
        weight_decay: float = RECIPE.weight_decay,
        warmup_steps: int = RECIPE.warmup_steps,
        channels_last: bool = False,
        seed: int = 0,
        steps_per_training_step: int = 1,
        compile: bool = False,
        **target: Any,
    ) -> None:
        super().__init__(classifier, **target)
        self.group_steps(steps_per_training_step, self._training_steps)

    # --- set-up -----------------------------------------------------------------------
    def configure_models(self) -> None:  # noqa: D102
        hp = self.hparams
        self.recipe = GeneratorRecipe.from_dict(
            {name: hp[name] for name in GeneratorRecipe.field_names()}
        )
        classifier = self.frozen_target()
        if hp.feature_layer not in classifier.layer_names():
            raise InversionError(
                f"{hp.classifier} has no layer {hp.feature_layer!r}; choose one of "
                f"{classifier.layer_names()[-8:]} (or any of classifier.layer_names())."
            )
        self.attach_frozen("classifier", classifier)  # not a submodule: never saved
        self.generator = self.recipe.new_generator(classifier.num_classes, hp.seed)

    def configure_losses(self) -> None:  # noqa: D102
        self.objective = self.recipe.loss()

    def configure_metrics(self) -> None:  # noqa: D102
        hp = self.hparams
        num_classes = self.classifier.num_classes
        probe = torch.zeros(2, hp.channels, hp.image_size, hp.image_size)
        with torch.no_grad():
            feature_dim = self.classifier.features(probe, [hp.feature_layer])[hp.feature_layer]
        self.target_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.diversity = ClassDiversity(
            num_classes,
            feature_dim[0].numel(),
            hp.channels,
            min(hp.image_size, MAX_PIXEL_SIZE),
        )

    def setup(self, stage: str) -> None:
        """Check the pairing and give the data module the model's sizes."""
        datamodule = getattr(self.trainer, "datamodule", None)
        configure = getattr(datamodule, "configure", None)
        if configure is None:
            raise InversionError(
                "ConditionedGeneratorInversion needs a LatentsDataModule (latents and labels); "
                f"got {type(datamodule).__name__}."
            )
        configure(self.classifier.num_classes, self.hparams.latent_dim)
        if self.hparams.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.classifier.to(memory_format=torch.channels_last)
        if self.hparams.compile:
            compile_in_place([self.generator, self.classifier])
        super().setup(stage)

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:  # noqa: D102
        optimizer = self.recipe.optimizer(self.generator.parameters())
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = warmup_cosine_scheduler(optimizer, total, self.recipe.warmup_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # --- training ---------------------------------------------------------------------
    def forward(self, latent: Tensor, labels: Tensor, noise: Tensor | None = None) -> Tensor:
        """Images for latents, labels and (soft encodings) their noise."""
        return self.generator(latent, self.generator.encode(labels, noise))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:  # noqa: D102
        loss, parts = generator_step(self.generator, self.classifier, self.objective, batch)
        self._log(loss, parts)
        return loss

    def _log(self, loss: Tensor | None, parts: dict[str, Tensor]) -> None:
        if loss is None or not self.logs_this_step():
            return
        logs = {f"train/{k}": v for k, v in parts.items()}
        self.log_dict(logs, on_step=True, on_epoch=False, batch_size=1)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=1)

    def _training_steps(self, dataloader_iter: Iterator[Any]) -> Tensor | None:
        """K steps of :meth:`training_step`, the update and the schedule, one per batch."""
        optimizer = cast(torch.optim.Optimizer, self.optimizers())
        scheduler = cast(torch.optim.lr_scheduler.LRScheduler, self.lr_schedulers())
        loss: Tensor | None = None
        parts: dict[str, Tensor] = {}
        for batch in self.next_batches(dataloader_iter):
            optimizer.zero_grad()
            loss, parts = generator_step(self.generator, self.classifier, self.objective, batch)
            self.manual_backward(loss)
            optimizer.step()
            scheduler.step()
        self._log(loss, parts)
        return None if loss is None else loss.detach()

    # --- sampling for the callbacks -----------------------------------------------------
    @contextlib.contextmanager
    def _fixed_dropout(self, batch_idx: int) -> Iterator[None]:
        """Seed the global RNG (dropout masks) per batch and rank; restore it afterwards."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(derive_seed(self.hparams.seed, batch_idx, self.global_rank))
            yield

    def _sample(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor] | None:
        labels = batch["label"]
        if len(labels) == 0:
            return None
        with self._fixed_dropout(batch_idx):
            images = self(batch["latent"], labels, batch["noise"])
        layer = self.hparams.feature_layer
        logits, features = self.classifier.forward_with_features(images, [layer])
        self.target_accuracy.update(logits, labels)
        self.diversity.update(features[layer], images, labels)
        return {"images": images, "labels": labels}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict | None:  # noqa: D102
        return self._sample(batch, batch_idx)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict | None:  # noqa: D102
        return self._sample(batch, batch_idx)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict | None:  # noqa: D102
        labels = batch["label"]
        with self._fixed_dropout(batch_idx):
            images = self(batch["latent"], labels, batch["noise"])
        return {"images": images, "labels": labels, "index": batch["index"]}

    def _log_sample_metrics(self, prefix: str) -> None:
        metrics = {"target_top1": self.target_accuracy, "": self.diversity}
        self.log_and_reset(prefix, metrics, prog_bar=prefix == "val")

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        self._log_sample_metrics("val")

    def on_test_epoch_end(self) -> None:  # noqa: D102
        self._log_sample_metrics("test")

    # --- checkpoints ------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save the RNG states (BaseTask) and the generator's init args.

        The init args let ``generator_from_checkpoint`` sample without the classifier.
        """
        super().on_save_checkpoint(checkpoint)
        checkpoint[GENERATOR_KEY] = dict(self.generator.init_args)  # generator_from_checkpoint
