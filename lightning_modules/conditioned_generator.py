"""Network inversion with a conditioned generator (Suhail and Sethi, 2024): wiring only."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from inversion.conditioned_generator import (
    GENERATOR_KEY,
    ClassDiversity,
    ConditionedGenerator,
    GeneratorLoss,
)
from inversion.errors import InversionError
from inversion.models import PENULTIMATE
from inversion.schedules import warmup_cosine_scheduler
from lightning_modules.base import TargetTask

MAX_PIXEL_SIZE = 64  # diversity's pixel distance is measured at most at 64 x 64


class ConditionedGeneratorInversion(TargetTask):
    """Train a generator G(z, c) whose images a frozen classifier assigns to class c.

    Pairs with ``LatentsDataModule`` (batches of latents, balanced labels and the hidden
    encodings' noise). Only the generator is trained and saved; the classifier is rebuilt
    from its spec. ``validation_step``/``test_step`` return ``{"images", "labels"}`` (the
    conditioning labels) for ``ImageMetrics``/``ImageGrid``, and the module logs
    ``target_top1`` (the target's accuracy on the samples), ``feature_cosine`` and
    ``pixel_distance`` (within-class diversity, features of ``feature_layer``). Samples
    are drawn with dropout on when ``dropout_at_sampling`` (the paper's setting), from
    fixed draws and a fixed dropout seed, so epochs compare. Plain ``ddp`` works.

    Args:
        classifier: Target classifier spec (frozen; not saved in checkpoints).
        weights: Local weights file for the classifier.
        pretrained: Download pretrained classifier weights (timm/torchvision).
        classifier_num_classes: Classes of the classifier's head (default: its own).
        input_size: Input size of fixed-size classifiers (ViTs, MLPs).
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
        seed: Seed of the dropout masks of validation/test samples.
    """

    def __init__(
        self,
        classifier: str = "digits:cnn",
        weights: str | None = None,
        pretrained: bool | None = None,
        classifier_num_classes: int | None = None,
        input_size: int | None = None,
        image_size: int = 32,
        channels: int = 1,
        latent_dim: int = 64,
        conditioning: str = "matrix",
        width: int = 16,
        max_width: int = 512,
        dropout: float = 0.5,
        dropout_at_sampling: bool = True,
        soft_scale: float = 6.0,
        matrix_size: int | None = None,
        kl_weight: float = 1.0,
        ce_weight: float = 1.0,
        cosine_weight: float = 5.0,
        cosine_pairs: str = "same_class",
        orthogonality_weight: float = 0.0,
        tv_weight: float = 0.0,
        l2_weight: float = 0.0,
        feature_layer: str = PENULTIMATE,
        lr: float = 5e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        channels_last: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(classifier, weights, pretrained, classifier_num_classes, input_size)
        self._pending_rng: dict[str, Any] | None = None

    # --- set-up -----------------------------------------------------------------------
    def configure_models(self) -> None:  # noqa: D102
        hp = self.hparams
        classifier = self.frozen_target()
        if hp.feature_layer not in classifier.layer_names():
            raise InversionError(
                f"{hp.classifier} has no layer {hp.feature_layer!r}; choose one of "
                f"{classifier.layer_names()[-8:]} (or any of classifier.layer_names())."
            )
        self.attach_frozen("classifier", classifier)  # not a submodule: never saved
        self.generator = ConditionedGenerator(
            classifier.num_classes,
            image_size=hp.image_size,
            channels=hp.channels,
            latent_dim=hp.latent_dim,
            conditioning=hp.conditioning,
            width=hp.width,
            max_width=hp.max_width,
            dropout=hp.dropout,
            dropout_at_sampling=hp.dropout_at_sampling,
            soft_scale=hp.soft_scale,
            matrix_size=hp.matrix_size,
        )

    def configure_losses(self) -> None:  # noqa: D102
        hp = self.hparams
        self.objective = GeneratorLoss(
            kl=hp.kl_weight,
            ce=hp.ce_weight,
            cosine=hp.cosine_weight,
            orthogonality=hp.orthogonality_weight,
            tv_l2=hp.tv_weight,
            l2=hp.l2_weight,
            feature_layer=hp.feature_layer,
            cosine_pairs=hp.cosine_pairs,
        )

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
        datamodule = self.trainer.datamodule
        if not hasattr(datamodule, "configure"):
            raise InversionError(
                "ConditionedGeneratorInversion needs a LatentsDataModule (latents and labels); "
                f"got {type(datamodule).__name__}."
            )
        datamodule.configure(self.classifier.num_classes, self.hparams.latent_dim)
        if self.hparams.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.classifier.to(memory_format=torch.channels_last)

    def configure_optimizers(self) -> dict[str, Any]:  # noqa: D102
        hp = self.hparams
        optimizer = torch.optim.Adam(
            self.generator.parameters(),
            lr=hp.lr,
            betas=tuple(hp.betas),
            weight_decay=hp.weight_decay,
        )
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = warmup_cosine_scheduler(optimizer, total, hp.warmup_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # --- training ---------------------------------------------------------------------
    def forward(self, latent: Tensor, labels: Tensor, noise: Tensor | None = None) -> Tensor:
        """Images for latents, labels and (soft encodings) their noise."""
        return self.generator(latent, self.generator.encode(labels, noise))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:  # noqa: D102
        labels = batch["label"]
        condition = self.generator.encode(labels, batch["noise"])
        images = self.generator(batch["latent"], condition)
        loss, parts = self.objective(self.classifier, images, labels, condition.target)
        self.log_dict(
            {f"train/{k}": v for k, v in parts.items()},
            on_step=True,
            on_epoch=False,
        )
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    # --- sampling for the callbacks -----------------------------------------------------
    @contextlib.contextmanager
    def _fixed_dropout(self, batch_idx: int) -> Iterator[None]:
        """Seed the global RNG (dropout masks) per batch and rank; restore it afterwards."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.hparams.seed * 1_000_003 + batch_idx * 1009 + self.global_rank)
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

    def _log_sample_metrics(self, prefix: str) -> None:
        values = {"target_top1": self.target_accuracy.compute(), **self.diversity.compute()}
        self.log_dict({f"{prefix}/{k}": v for k, v in values.items()}, prog_bar=prefix == "val")
        self.target_accuracy.reset()
        self.diversity.reset()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict | None:  # noqa: D102
        return self._sample(batch, batch_idx)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict | None:  # noqa: D102
        return self._sample(batch, batch_idx)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict | None:  # noqa: D102
        labels = batch["label"]
        with self._fixed_dropout(batch_idx):
            images = self(batch["latent"], labels, batch["noise"])
        return {"images": images, "labels": labels, "index": batch["index"]}

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        self._log_sample_metrics("val")

    def on_test_epoch_end(self) -> None:  # noqa: D102
        self._log_sample_metrics("test")

    # --- checkpoints ------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save the global RNG and the generator's init args.

        The RNG draws the training dropout masks, so a resumed run continues exactly; the
        init args let ``generator_from_checkpoint`` sample without the classifier.
        """
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        checkpoint["generator_rng"] = rng
        checkpoint[GENERATOR_KEY] = dict(self.generator.init_args)  # generator_from_checkpoint

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the saved RNG for on_train_start (only a resumed fit restores it)."""
        self._pending_rng = checkpoint.get("generator_rng")

    def on_train_start(self) -> None:  # noqa: D102
        if self._pending_rng is not None:
            torch.set_rng_state(self._pending_rng["cpu"])
            if "cuda" in self._pending_rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(self._pending_rng["cuda"], self.device)
            self._pending_rng = None
