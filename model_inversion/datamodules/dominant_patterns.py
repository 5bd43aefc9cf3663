"""Train on one DataModule (proxy data), evaluate on another (labelled data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader


class ProxyDataModule(pl.LightningDataModule):
    """Training batches from ``proxy``, validation/test/predict batches from ``evaluation``.

    For methods whose training data need not be the evaluation data: a universal pattern
    optimised on noise (``NoiseDataModule``) or on unlabelled images (a COCO folder) and
    measured on the digits test split or the ImageNet validation folder. Each module's own
    batch hooks (e.g. the digits' random shifts) still apply to its own batches.

    Args:
        proxy: The DataModule whose ``train_dataloader`` gives the training batches.
        evaluation: The DataModule whose ``val``/``test``/``predict`` loaders are used.
    """

    def __init__(self, proxy: pl.LightningDataModule, evaluation: pl.LightningDataModule) -> None:
        super().__init__()
        self.proxy, self.evaluation = proxy, evaluation
        for part, key in ((proxy, "proxy"), (evaluation, "evaluation")):
            _restore_own_hyperparameters(part, key)

    def _parts(self) -> tuple[pl.LightningDataModule, pl.LightningDataModule]:
        for part in (self.proxy, self.evaluation):
            part.trainer = self.trainer
        return self.proxy, self.evaluation

    def prepare_data(self) -> None:  # noqa: D102
        for part in self._parts():
            part.prepare_data()

    def setup(self, stage: str) -> None:
        """Set up the proxy for training and the evaluation data for evaluating."""
        proxy, evaluation = self._parts()
        if stage == "fit":
            proxy.setup("fit")
        evaluation.setup("validate" if stage == "fit" else stage)

    def train_dataloader(self) -> Any:  # noqa: D102
        return self.proxy.train_dataloader()

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self.evaluation.val_dataloader()

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self.evaluation.test_dataloader()

    def predict_dataloader(self) -> DataLoader:  # noqa: D102
        return self.evaluation.predict_dataloader()

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Apply the hook of the DataModule the batch came from."""
        part = self.proxy if self.trainer is not None and self.trainer.training else self.evaluation
        return part.on_after_batch_transfer(batch, dataloader_idx)


def _restore_own_hyperparameters(part: pl.LightningDataModule, key: str) -> None:
    """Give a nested DataModule its own hyperparameters back.

    LightningCLI instantiates every DataModule of the ``data`` config inside one context
    that hands them all the outer config (``{"_class_path", "proxy", "evaluation"}``) as
    hyperparameters; the part's own init args are in that config under ``key``.
    """
    hparams = part.hparams
    config = hparams.get(key)
    if "_class_path" not in hparams or not isinstance(config, Mapping):
        return
    own = dict(config.get("init_args") or {})
    part.save_hyperparameters(own, ignore=[name for name in hparams if name not in own])
