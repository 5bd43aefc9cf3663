"""Verifier top-1/top-5, Inception Score, FID and KID of what a module produces."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from inversion.metrics.scorer import ImageScorer
from model_inversion.callbacks.outputs import produced_images
from model_inversion.lightning_modules.base import log_hparams_metrics

STAGES = {"validate": "val", "test": "test"}


class ImageMetrics(pl.Callback):
    """Score the images returned by ``validation_step``/``test_step`` once per epoch.

    Reconstructions (steps that also return ``originals``) get ``psnr``, ``ssim`` and
    ``agree_<verifier>`` as well (see :class:`~inversion.metrics.scorer.ImageScorer`).

    Metrics are torchmetrics states on the module's device, synced across DDP
    processes; they are logged as ``val/<metric>``/``test/<metric>`` scalars and as
    ``hp/val/<metric>``/``hp/test/<metric>`` (TensorBoard hparams metrics under a
    :class:`~lightning.pytorch.loggers.TensorBoardLogger`, plain metrics under any other
    logger, e.g. CSV), and kept in :attr:`results`. Every configured logger gets them.

    Args:
        verifiers: Classifier specs that did not produce the images (top-1/top-5 each).
        feature: ``inception``, a classifier spec (e.g. ``digits:resnet``, named in the
            metric: ``fid_digits-resnet``), or None for no IS/FID/KID.
        inception_weights: Local InceptionV3 weights file (offline use).
        fid: Compute FID.
        inception_score: Compute the Inception Score (shuffled splits as in torch-fidelity;
            the same on any number of processes).
        splits: Inception Score splits.
        kid: Compute KID (``kid``, ``kid_std``; torch-fidelity's definition); None (the
            default): the same as ``fid``.
        reference: FID/KID reference: ``digits:SPLIT`` or an image folder (statistics cached);
            None uses the ``reference`` images the module returns.
        log_hparams: Also record the metrics as ``hp/...`` (TensorBoard: hparams metrics).
    """

    def __init__(
        self,
        verifiers: list[str] | None = None,
        feature: str | None = "inception",
        inception_weights: str | None = None,
        fid: bool = True,
        inception_score: bool = True,
        splits: int = 10,
        kid: bool | None = None,
        reference: str | None = None,
        log_hparams: bool = True,
    ) -> None:
        self.options: dict[str, Any] = {
            "verifiers": list(verifiers or []),
            "feature": feature,
            "inception_weights": inception_weights,
            "fid": fid,
            "inception_score": inception_score,
            "splits": splits,
            "kid": kid,
        }
        self.reference = reference
        self.log_hparams = log_hparams
        self.scorer: ImageScorer | None = None
        self.results: dict[str, dict[str, float]] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Build the verifiers and feature extractor (bad specs fail before any work)."""
        if self.scorer is None:
            self.scorer = ImageScorer(**self.options)

    @property
    def _scorer(self) -> ImageScorer:
        if self.scorer is None:
            raise RuntimeError("ImageMetrics: the scorer is built in setup(), which has not run.")
        return self.scorer

    def _prepare(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Move to the module's device, then embed the reference images there, once.

        The device is known only once the strategy has placed the module (after setup);
        reference statistics are also cached on disk across runs.
        """
        self._scorer.to(pl_module.device)
        if self.reference is not None and not self._scorer.has_reference:
            self._scorer.set_reference(self.reference, progress=trainer.is_global_zero)

    def on_validation_start(self, trainer, pl_module) -> None:  # noqa: D102
        self._prepare(trainer, pl_module)

    def on_test_start(self, trainer, pl_module) -> None:  # noqa: D102
        self._prepare(trainer, pl_module)

    def _update(self, outputs: Any) -> None:
        produced = produced_images(outputs)
        if produced is not None:
            self._scorer.update(
                produced["images"],
                produced.get("labels"),
                produced.get("reference"),
                produced.get("originals"),
            )

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        """Take the images a validation step returned."""
        self._update(outputs)

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        """Take the images a test step returned."""
        self._update(outputs)

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prefix: str) -> None:
        if trainer.sanity_checking or not self._scorer.updated():
            self._scorer.reset()
            return
        results = self._scorer.compute()
        self._scorer.reset()
        self.results[prefix] = results
        for key, value in results.items():
            pl_module.log(f"{prefix}/{key}", value)
        if self.log_hparams:
            metrics = {f"hp/{prefix}/{key}": value for key, value in results.items()}
            log_hparams_metrics(trainer, pl_module.hparams, metrics)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102
        self._finish(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102
        self._finish(trainer, pl_module, "test")
