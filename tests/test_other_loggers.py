"""The callbacks and modules that log images and metrics work under any logger, or none."""

import csv
from pathlib import Path

import lightning.pytorch as pl
import pytest
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset
from trainers import quiet_trainer

from callbacks import ImageGrid, ImageMetrics
from datamodules import DigitsDataModule
from inversion.data.digits import load_digits_split
from lightning_modules import DominantPatterns, RealImages


def _metrics() -> ImageMetrics:
    return ImageMetrics(verifiers=["digits:mlp"], feature=None)


def _csv_columns(logger: CSVLogger) -> dict[str, list[float]]:
    """Every non-empty value of every column of the logger's metrics.csv, read back."""
    path = Path(logger.log_dir) / "metrics.csv"
    columns: dict[str, list[float]] = {}
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            for key, value in row.items():
                if value not in ("", None):
                    columns.setdefault(key, []).append(float(value))
    return columns


def _test_real_images(tmp_path: Path, logger) -> tuple[pl.Trainer, ImageMetrics, ImageGrid]:
    metrics, grid = _metrics(), ImageGrid(per_class=2)
    trainer = quiet_trainer(
        logger=logger,
        callbacks=[metrics, grid],
        limit_test_batches=1,
        default_root_dir=str(tmp_path),
    )
    trainer.test(RealImages(), datamodule=DigitsDataModule(batch_size=50))
    return trainer, metrics, grid


def _assert_in_csv(logger: CSVLogger, results: dict[str, float], prefix: str) -> None:
    columns = _csv_columns(logger)
    for key, value in results.items():
        for name in (f"{prefix}/{key}", f"hp/{prefix}/{key}"):
            assert columns[name] == [pytest.approx(value, abs=1e-6)], name


def test_image_metrics_and_grid_under_csv_logger(tmp_path):
    logger = CSVLogger(str(tmp_path), name="run")
    trainer, metrics, grid = _test_real_images(tmp_path, logger)
    results = metrics.results["test"]
    assert "top1_digits-mlp" in results
    _assert_in_csv(logger, results, "test")
    png = grid.saved[0]
    assert png.is_file() and png.parent == Path(trainer.log_dir) / "images"


def test_image_metrics_reach_tensorboard_and_csv_together(tmp_path):
    tensorboard = TensorBoardLogger(str(tmp_path), name="tb")
    table = CSVLogger(str(tmp_path), name="csv")
    _, metrics, _ = _test_real_images(tmp_path, [table, tensorboard])  # CSV first
    results = metrics.results["test"]
    _assert_in_csv(table, results, "test")
    events = EventAccumulator(tensorboard.log_dir)
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    for key, value in results.items():
        assert {f"test/{key}", f"hp/test/{key}"} <= scalars
        assert events.Scalars(f"hp/test/{key}")[-1].value == pytest.approx(value, abs=1e-6)


def test_image_metrics_without_a_logger(tmp_path):
    _, metrics, grid = _test_real_images(tmp_path, False)
    assert metrics.results["test"]["top1_digits-mlp"] > 0.5
    assert grid.saved == [tmp_path / "images" / "test-epoch000-step0.png"]


class _SmallDigits(pl.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        self.train = TensorDataset(*(t[:32] for t in load_digits_split("train")))
        self.val = TensorDataset(*(t[:30] for t in load_digits_split("val")))

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=16)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=30)


def test_dominant_patterns_fit_with_image_metrics_under_csv_logger(tmp_path):
    logger = CSVLogger(str(tmp_path), name="run")
    metrics = _metrics()
    trainer = quiet_trainer(
        max_epochs=1,
        logger=logger,
        callbacks=[metrics, ImageGrid(per_class=2)],
        log_every_n_steps=1,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(DominantPatterns(eps=32 / 255), datamodule=_SmallDigits())
    _assert_in_csv(logger, metrics.results["val"], "val")
    assert "val/fooling_rate" in _csv_columns(logger)
    pngs = {p.name for p in (Path(trainer.log_dir) / "images").glob("*.png")}
    assert "pattern-val-step2.png" in pngs and any(p.startswith("val-epoch") for p in pngs)
