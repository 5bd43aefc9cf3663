"""Train (or fine-tune) any classifier spec on any labelled DataModule."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from inversion.metrics.scorer import top_k_accuracy
from inversion.models import build_classifier
from inversion.models.specs import self_contained_hparams
from inversion.schedules import warmup_cosine_scheduler
from inversion.training import OptimizerName, build_optimizer, classification_loss
from model_inversion.lightning_modules.base import BaseTask


class ClassifierModule(BaseTask):
    """Supervised training of a classifier given by a spec.

    Its checkpoints are themselves classifier specs: ``build_classifier("path.ckpt")``
    rebuilds the network from the saved hyperparameters (loaded with
    ``weights_only=True``). They are self-contained: the saved hyperparameters name the
    network's architecture (``pretrained=False``, no ``weights``; what the run started
    from is kept as ``initialised_from``), so ``load_from_checkpoint`` and
    ``build_classifier`` need neither the starting weights file nor the network.

    Args:
        classifier: Spec, e.g. ``digits:resnet``, ``timm:resnet18``,
            ``torchvision:resnet18`` or a checkpoint path.
        pretrained: Start from pretrained weights (timm/torchvision download them; for
            ``digits:*`` True means the trained embedded model). False trains from scratch.
        weights: A local weights file to start from instead.
        num_classes: Number of classes.
        in_chans: Input channels of the network (default: the spec's own).
        input_size: Input size for fixed-size models (ViTs, MLPs).
        optimizer: ``adamw`` or ``sgd``.
        lr: Peak learning rate (linear warm-up, then cosine decay to 0).
        weight_decay: Weight decay.
        momentum: SGD momentum.
        label_smoothing: Cross-entropy label smoothing.
        warmup_epochs: Epochs of linear warm-up.
        channels_last: Run the network in channels_last memory format (faster convolutions
            on GPUs, with bf16 in particular).
    """

    lr_schedule = True  # warm-up, then cosine decay

    def __init__(
        self,
        classifier: str = "digits:cnn",
        pretrained: bool = False,
        weights: str | None = None,
        num_classes: int = 10,
        in_chans: int | None = None,
        input_size: int | None = None,
        optimizer: OptimizerName = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        momentum: float = 0.9,
        label_smoothing: float = 0.0,
        warmup_epochs: int = 0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()

    def configure_models(self) -> None:  # noqa: D102
        hp = self.hparams
        self.model = build_classifier(
            hp.classifier,
            num_classes=hp.num_classes,
            in_chans=hp.in_chans,
            input_size=hp.input_size,
            pretrained=hp.pretrained,
            weights=hp.weights,
        ).train()  # build_classifier returns eval mode; this model is trained
        if hp.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save hyperparameters that rebuild the network without its starting weights."""
        super().on_save_checkpoint(checkpoint)
        hparams = checkpoint.get("hyper_parameters")
        if isinstance(hparams, dict):
            checkpoint["hyper_parameters"] = self_contained_hparams(hparams, self.model)

    def label_classes(self) -> tuple[str, int]:
        """The trained network reads the labels: its spec and ``num_classes``."""
        return str(self.hparams.classifier), self.model.num_classes

    def to_memory_format(self, images: Tensor) -> Tensor:
        """Images in the memory format of the network (see ``channels_last``)."""
        if self.hparams.channels_last:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def configure_metrics(self) -> None:  # noqa: D102
        num_classes = self.hparams.num_classes
        metrics: dict[str, Metric | MetricCollection] = {"acc": top_k_accuracy(num_classes, 1)}
        if num_classes > 5:
            metrics["acc_top5"] = top_k_accuracy(num_classes, 5)
        collection = MetricCollection(metrics)
        self.train_metrics = collection.clone(prefix="train/")
        self.val_metrics = collection.clone(prefix="val/")
        self.test_metrics = collection.clone(prefix="test/")

    def forward(self, images: Tensor) -> Tensor:
        """Logits for images in [0, 1]."""
        return self.model(images)

    def _shared_step(self, batch: Any, stage: str, metrics: MetricCollection) -> Tensor:
        images, labels = self.to_memory_format(batch[0]), batch[1]
        logits = self(images)
        loss = classification_loss(logits, labels, self.hparams.label_smoothing)
        metrics.update(logits, labels)
        on_step = stage == "train"
        self.log(
            f"{stage}/loss",
            loss,
            on_step=on_step,
            on_epoch=True,
            prog_bar=True,
            sync_dist=not on_step,
        )
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train")
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:  # noqa: D102
        return self._shared_step(batch, "train", self.train_metrics)

    def validation_step(self, batch: Any, batch_idx: int) -> None:  # noqa: D102
        self._shared_step(batch, "val", self.val_metrics)

    def test_step(self, batch: Any, batch_idx: int) -> None:  # noqa: D102
        self._shared_step(batch, "test", self.test_metrics)

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:  # noqa: D102
        return self(batch[0]).softmax(dim=1)

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:  # noqa: D102
        hp = self.hparams
        optimizer = build_optimizer(
            self.parameters(), hp.optimizer, hp.lr, hp.weight_decay, hp.momentum
        )
        total = int(self.trainer.estimated_stepping_batches)
        max_epochs = max(self.trainer.max_epochs or 1, 1)
        warmup = total * hp.warmup_epochs // max_epochs
        scheduler = warmup_cosine_scheduler(optimizer, total, warmup)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


__all__ = ["ClassifierModule"]
