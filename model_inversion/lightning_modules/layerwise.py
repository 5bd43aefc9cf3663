"""Zero-shot layer-wise inversion (Dong et al. 2021) as a LightningModule: wiring only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor
from torchmetrics import MeanMetric

from inversion.layerwise import (
    BlockOptions,
    InverterStack,
    LossWeights,
    Method,
    Schedule,
    build_optimizers,
    export_inverter,
    phase_loss,
    set_lr,
)
from inversion.metrics.reconstruction import agreement, psnr
from inversion.models import ImageClassifier
from inversion.models.split import ClassifierBlocks, default_layers, split_classifier
from model_inversion.compiling import compile_in_place
from model_inversion.datamodules.layerwise import check_synthetic_training
from model_inversion.lightning_modules.base import TargetTask
from model_inversion.lightning_modules.strategies import require_unused_parameter_search


class LayerwiseInversion(TargetTask):
    """Train a feed-forward inverter of a frozen classifier on synthetic images only.

    The classifier is cut at ``layers`` into blocks f_1..f_K; the inverter is one inverse
    block g_k per classifier block, composed into g_1 o ... o g_K (from the output of the
    last layer back to the image). The schedule (global step by global step, so a
    checkpoint resumes either phase exactly): ``blockwise_steps`` for each block in turn
    (reconstruction of the block input + cycle-consistency f_k(g_k(z)) = z), then
    ``resync_steps`` of end-to-end fine-tuning with cycle-consistency at every block.
    ``method: naive`` trains the same architecture end to end on the image alone (the
    baseline). Training data must be synthetic (``SyntheticImagesDataModule``); real
    images are for validation and test only. Validation/test steps return
    ``{"images": reconstruction from the last layer, "originals", "labels"?, "depths":
    {layer: reconstruction from that layer}}``, and the module logs
    ``psnr_<layer>`` and ``agree_<layer>`` (the classifier gives the reconstruction from
    that layer the class it gives the original) for every layer the run trains an
    inverter for (``Schedule.trained_depths``: every layer with ``resync_steps: 0``,
    else the last one only; a dot in a layer name, as in ``stage1.0``, becomes an
    underscore).

    Args:
        classifier: Classifier spec (frozen; not saved in checkpoints).
        layers: Cut points in forward order (module names or ``penultimate``); default
            the classifier's feature layers and ``penultimate``.
        image_size: Side of the images.
        channels: Channels of the images.
        method: ``layerwise`` or ``naive``.
        blockwise_steps: Training steps per block in the blockwise phase.
        resync_steps: Training steps of the resync phase (0 skips it).
        naive_steps: Steps of the naive baseline (default: the layer-wise total).
        lr: Peak learning rate of the blockwise and naive phases (Adam, cosine decay).
        resync_lr: Peak learning rate of the resync phase.
        loss_weights: ``reconstruction``, ``cycle`` (blockwise), ``resync_image``,
            ``resync_cycle`` (see ``inversion.layerwise.LossWeights``).
        block: Inverse-block architecture (``norm``, ``width``, ``min_width``,
            ``max_width``, ``convs``, ``upsample``; see ``BlockOptions``).
        export_path: After training, write the inverter here with ``torch.export``
            (loads without this project); relative paths are inside the run's log dir.
        steps_per_training_step: Optimisation steps run in one Lightning training step
            (K, each on its own batch): the Trainer's fixed per-step cost is paid once
            per K steps; the weights are those of K = 1 (see ``BaseTask.group_steps``).
        compile: ``torch.compile`` the classifier's blocks and the inverse blocks in
            place before the first step (``compiling.compile_in_place``, fixed shapes);
            the weights equal the eager run's up to float reassociation. Compiling
            costs seconds up front (each block, with and without gradients) and pays
            on long runs of large models (``benchmarks.layerwise_speed``).
        **target: ``weights``, ``pretrained``, ``classifier_num_classes``,
            ``input_size`` of the classifier (see :class:`TargetTask`).
    """

    blocks: ClassifierBlocks  # attached frozen (attach_frozen): never saved
    classifier: ImageClassifier  # set with object.__setattr__: not a submodule

    def __init__(
        self,
        classifier: str = "digits:resnet",
        layers: list[str] | None = None,
        image_size: int = 32,
        channels: int = 1,
        method: Method = "layerwise",
        blockwise_steps: int = 300,
        resync_steps: int = 300,
        naive_steps: int | None = None,
        lr: float = 1e-3,
        resync_lr: float = 3e-4,
        loss_weights: dict[str, float] | None = None,
        block: dict[str, Any] | None = None,
        export_path: str | None = "inverter.pt2",
        steps_per_training_step: int = 1,
        compile: bool = False,
        **target: Any,
    ) -> None:
        super().__init__(classifier, **target)
        self.automatic_optimization = False
        self.group_steps(steps_per_training_step, self._training_steps)

    def configure_models(self) -> None:  # noqa: D102
        hp = self.hparams
        classifier = self.frozen_target()
        self.layers = list(hp.layers) if hp.layers else default_layers(classifier)
        blocks = split_classifier(
            classifier, self.layers, (hp.channels, hp.image_size, hp.image_size)
        )
        self.attach_frozen("blocks", blocks)  # frozen, runs the classifier's layers: never saved
        object.__setattr__(self, "classifier", classifier)  # moves with the blocks
        self.inverter = InverterStack(blocks.shapes, BlockOptions.from_dict(hp.block))
        self.schedule = Schedule(
            len(self.layers),
            method=hp.method,
            blockwise_steps=hp.blockwise_steps,
            resync_steps=hp.resync_steps,
            naive_steps=hp.naive_steps,
            lr=hp.lr,
            resync_lr=hp.resync_lr,
        )
        self.loss_weights = LossWeights.from_dict(hp.loss_weights)

    def configure_metrics(self) -> None:  # noqa: D102
        # only the depths this run trains for: a prefix of a stack trained from a deeper
        # cut (re-synced or naive) was never trained to invert from its own layer
        self.trained_layers = [self.layers[d - 1] for d in self.schedule.trained_depths]
        names = [_metric_name(m, layer) for layer in self.trained_layers for m in ("psnr", "agree")]
        self.depth_metrics = torch.nn.ModuleDict({name: MeanMetric() for name in names})

    # --- set-up -----------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Check the strategy; fit runs the schedule as one epoch."""
        if stage == "fit" and self.schedule.method == "layerwise":
            require_unused_parameter_search(
                self.trainer.strategy,
                "LayerwiseInversion",
                "the blockwise phase trains one inverse block per step",
            )
        if self.hparams.compile:
            compile_in_place([self.blocks.prepare, *self.blocks.blocks, *self.inverter.blocks])
        super().setup(stage)

    def training_schedule(self) -> int:
        """The blockwise and re-sync phases (or the naive run), step by step."""
        return self.schedule.total

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """One Adam per block (blockwise) and one for the whole stack (resync/naive)."""
        return build_optimizers(self.inverter, self.schedule)

    def on_train_start(self) -> None:
        """Refuse real training data before the first step."""
        super().on_train_start()
        check_synthetic_training(self.trainer.train_dataloader, type(self).__name__)

    # --- training ---------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:  # noqa: D102
        return self._optimise(batch)

    def _training_steps(self, dataloader_iter: Iterator[Any]) -> Tensor | None:
        """K optimisation steps, one per batch of the data (``steps_per_training_step``)."""
        loss = None
        for batch in self.next_batches(dataloader_iter):
            loss = self._optimise(batch)
        return loss

    def _optimise(self, batch: Any) -> Tensor:
        """One optimisation step of the schedule's phase at the global step; its loss."""
        images = batch[0]
        phase = self.schedule.at(self.global_step)
        optimizers = self.optimizers()
        optimizer = optimizers[phase.optimizer] if isinstance(optimizers, list) else optimizers
        set_lr(optimizer.optimizer, phase.lr)
        loss, parts = phase_loss(phase, self.blocks, self.inverter, images, self.loss_weights)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        if self.logs_this_step():  # the last step of a grouped one logs last
            prefix = f"train/{phase.name}" + (f"_{phase.block}" if phase.block else "")
            logs = {f"{prefix}/{k}": v.detach() for k, v in parts.items()}
            logs[f"{prefix}/loss"] = loss.detach()
            self.log_dict(logs, on_step=True, on_epoch=False, batch_size=1)
            self.log("train/lr", phase.lr, on_step=True, on_epoch=False, batch_size=1)
            self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=1)
        return loss.detach()

    # --- evaluation -------------------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, images: Tensor, layers: list[str] | None = None) -> dict[str, Tensor]:
        """``{layer: g_1..k(f_1..k(images))}`` for each cut layer k in ``layers`` (all)."""
        features = self.blocks.prefix(images)
        wanted = self.layers if layers is None else layers
        return {
            layer: self.inverter(features[k], k).float().clamp(0, 1)
            for k, layer in enumerate(self.layers, start=1)
            if layer in wanted
        }

    def _evaluate(self, batch: Any) -> dict[str, Any]:
        images = batch[0]
        by_depth = self.reconstruct(images, self.trained_layers)
        for layer, recon in by_depth.items():
            self._depth_metric("psnr", layer).update(psnr(recon, images))
            agree = agreement(self.classifier, recon, images)
            self._depth_metric("agree", layer).update(agree)
        out = {"images": by_depth[self.layers[-1]], "originals": images, "depths": by_depth}
        labels = batch[1] if len(batch) > 1 else None
        if labels is not None and bool((labels >= 0).all()):
            out["labels"] = labels
        return out

    def _depth_metric(self, metric: str, layer: str) -> MeanMetric:
        """The mean of ``metric`` at ``layer`` (a ModuleDict types it as a plain module)."""
        return cast(MeanMetric, self.depth_metrics[_metric_name(metric, layer)])

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:  # noqa: D102
        return self._evaluate(batch)

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:  # noqa: D102
        return self._evaluate(batch)

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        self.log_and_reset("val", self.depth_metrics)

    def on_test_epoch_end(self) -> None:  # noqa: D102
        self.log_and_reset("test", self.depth_metrics)

    # --- export -----------------------------------------------------------------------
    def export(self, path: str | Path, depth: int | None = None) -> Path:
        """Write g_1 o ... o g_depth (default: all) with ``torch.export``; loads without us."""
        depth = len(self.layers) if depth is None else depth
        metadata = {
            "classifier": self.hparams.classifier,
            "layer": self.layers[depth - 1],
            "layers": self.layers[:depth],
            "method": self.hparams.method,
        }
        return export_inverter(self.inverter, depth, path, metadata)

    def on_train_end(self) -> None:
        """Export the trained inverter (global-zero process)."""
        path = self.hparams.export_path
        if not path or not self.trainer.is_global_zero:
            return
        path = Path(path)
        if not path.is_absolute():
            path = Path(self.trainer.log_dir or self.trainer.default_root_dir) / path
        self.export(path)


def _metric_name(metric: str, layer: str) -> str:
    """``psnr_stage1_0`` for layer ``stage1.0``: module names may not contain dots."""
    return f"{metric}_{layer.replace('.', '_')}"
