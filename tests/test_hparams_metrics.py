"""Every module records its metrics as hparams metrics, with no placeholder, and its lr."""

from __future__ import annotations

import csv

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from model_inversion.datamodules import DigitsDataModule
from model_inversion.lightning_modules import ClassifierModule
from model_inversion.lightning_modules.base import BaseTask


def run_classifier(tmp_path, loggers) -> None:
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=loggers,
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=1,
        limit_test_batches=1,
        num_sanity_val_steps=1,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    module = ClassifierModule(classifier="digits:cnn", warmup_epochs=1)
    data = DigitsDataModule(batch_size=16)
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, verbose=False)


def tensorboard_tags(folder) -> tuple[set[str], bytes]:
    """Scalar tags of a TensorBoard run, and the hparams plugin's serialised content."""
    events = EventAccumulator(str(folder), size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    plugin = b"".join(events.PluginTagToContent("hparams").values())
    return set(events.Tags()["scalars"]), plugin


def test_tensorboard_gets_hparams_metrics_and_lr_but_no_placeholder(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="tb")  # default_hp_metric=True
    run_classifier(tmp_path, logger)
    scalars, plugin = tensorboard_tags(logger.log_dir)
    assert {"hp/val/acc", "hp/val/loss", "hp/test/acc", "hp/test/loss"} <= scalars
    assert "hp_metric" not in scalars and b"hp_metric" not in plugin
    # the hparams plugin lists the metrics of a run's first record (here the validation's)
    assert b"hp/val/acc" in plugin and b"hp/val/loss" in plugin
    lr = [tag for tag in scalars if tag.startswith("lr-")]
    assert lr, scalars


def test_csv_logger_gets_them_as_plain_metrics(tmp_path):
    logger = CSVLogger(tmp_path, name="csv")
    run_classifier(tmp_path, logger)
    with open(f"{logger.log_dir}/metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    columns = set(rows[0])
    assert {"hp/val/acc", "hp/test/acc", "hp/test/loss"} <= columns
    assert "hp_metric" not in columns
    lr_column = next(c for c in columns if c.startswith("lr-"))
    lrs = [float(r[lr_column]) for r in rows if r[lr_column]]
    assert len(lrs) == 3 and lrs[0] < lrs[1]  # the warm-up rises over the first epoch
    test_acc = [float(r["hp/test/acc"]) for r in rows if r["hp/test/acc"]]
    assert len(test_acc) == 1 and 0.0 <= test_acc[0] <= 1.0


def test_every_module_declares_hparams_metrics():
    from model_inversion import lightning_modules

    for name in lightning_modules.__all__:
        module = getattr(lightning_modules, name)
        assert issubclass(module, BaseTask) and module.hparams_metrics, name
