"""The callbacks and modules that log images and metrics work under any logger, or none."""

import csv
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset
from trainers import quiet_trainer

from inversion.data.digits import load_digits_split
from model_inversion.callbacks import DepthGrid, ImageGrid, ImageMetrics
from model_inversion.callbacks.loggers import log_image
from model_inversion.datamodules import DigitsDataModule
from model_inversion.lightning_modules import DominantPatterns, RealImages


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


# --- log_image: one image to every logger ------------------------------------------------
class _FakeWandb(Logger):
    """The interface of WandbLogger that log_image uses (wandb is not installed)."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[tuple[str, list, int]] = []

    name = "wandb"  # type: ignore[assignment]
    version = "0"  # type: ignore[assignment]

    def log_image(self, key: str, images: list, step: int | None = None) -> None:
        self.images.append((key, images, step))

    def log_metrics(self, metrics, step=None) -> None:
        pass

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


class _FakeMlflowClient:
    def __init__(self) -> None:
        self.images: list[tuple[str, Image.Image, str]] = []

    def log_image(self, run_id: str, image, artifact_file: str | None = None) -> None:
        self.images.append((run_id, image, artifact_file))


class _FakeMlflow(_FakeWandb):
    """MLFlowLogger's interface: an MlflowClient as experiment and a run_id."""

    log_image = None  # type: ignore[assignment]  # the logger itself has none

    def __init__(self) -> None:
        super().__init__()
        self.client = _FakeMlflowClient()
        self.run_id = "run-1"

    @property
    def experiment(self) -> _FakeMlflowClient:
        return self.client


def _trainer_with(tmp_path: Path, logger) -> pl.Trainer:
    trainer = quiet_trainer(logger=logger, default_root_dir=str(tmp_path))
    return trainer


def _gray(value: float = 0.5) -> torch.Tensor:
    image = torch.full((1, 6, 8), value)
    image[0, 0, 0] = 1.0
    return image


def test_log_image_writes_a_readable_png_for_a_csv_logger(tmp_path):
    logger = CSVLogger(str(tmp_path), name="run")
    written = log_image(_trainer_with(tmp_path, logger), "val/../../images", _gray(), step=7)
    assert written == [Path(logger.log_dir) / "images" / "val_.._.._images_step7.png"]
    with Image.open(written[0]) as png:
        pixels = torch.tensor(list(png.convert("L").getdata())).view(6, 8)
    assert pixels[0, 0] == 255 and pixels[1, 1] == 128  # the image, read back
    assert [p for p in tmp_path.rglob("*.png")] == written  # nothing outside the log dir


def test_log_image_without_a_logger_writes_nothing(tmp_path):
    trainer = _trainer_with(tmp_path, False)
    assert log_image(trainer, "val/images", _gray()) == []
    assert not any(tmp_path.rglob("*"))
    # a caller that asks for its PNG gets it in the run dir
    png = log_image(trainer, "val/images", _gray(), png_name="grid.png")
    assert png == [tmp_path / "images" / "grid.png"] and png[0].is_file()


def test_log_image_to_tensorboard_and_csv(tmp_path):
    tensorboard = TensorBoardLogger(str(tmp_path), name="tb")
    table = CSVLogger(str(tmp_path), name="csv")
    written = log_image(_trainer_with(tmp_path, [tensorboard, table]), "val/images", _gray(), 3)
    assert written == [Path(table.log_dir) / "images" / "val_images_step3.png"]
    tensorboard.experiment.flush()
    events = EventAccumulator(tensorboard.log_dir, size_guidance={"images": 0})
    events.Reload()
    (event,) = events.Images("val/images")
    assert (event.step, event.width, event.height) == (3, 8, 6)


def test_log_image_uses_the_wandb_and_mlflow_interfaces(tmp_path):
    wandb, mlflow = _FakeWandb(), _FakeMlflow()
    trainer = _trainer_with(tmp_path, [wandb, mlflow])
    assert log_image(trainer, "test/pattern", _gray(), step=5) == []
    ((key, (image,), step),) = wandb.images
    assert (key, step, image.size, image.getpixel((0, 0))) == ("test/pattern", 5, (8, 6), 255)
    ((run_id, image, artifact),) = mlflow.client.images
    assert (run_id, artifact, image.size) == ("run-1", "images/test_pattern_step5.png", (8, 6))
    assert not any(tmp_path.rglob("*.png"))


def test_image_grid_reaches_every_logger(tmp_path):
    table, wandb = CSVLogger(str(tmp_path), name="run"), _FakeWandb()
    _, _, grid = _test_real_images(tmp_path, [table, wandb])
    assert [key for key, _, _ in wandb.images] == ["test/images"]
    assert grid.saved == [Path(table.log_dir) / "images" / "test-epoch000-step0.png"]
    assert list((Path(table.log_dir) / "images").glob("*.png")) == grid.saved  # written once


class _Depths(pl.LightningModule):
    """Test steps that return reconstructions from two depths."""

    def test_step(self, batch, batch_idx):
        images = batch[0]
        return {
            "images": images,
            "originals": images,
            "depths": {"stem": images * 0.5, "stage1": images},
        }


def test_depth_grid_reaches_every_logger(tmp_path):
    table, wandb = CSVLogger(str(tmp_path), name="run"), _FakeWandb()
    depth = DepthGrid(num_images=3)
    trainer = quiet_trainer(logger=[table, wandb], callbacks=[depth])
    images = torch.rand(4, 1, 8, 8)
    trainer.test(_Depths(), dataloaders=DataLoader(TensorDataset(images), batch_size=2))
    assert [key for key, _, _ in wandb.images] == ["test/depths"]
    assert depth.saved == [Path(table.log_dir) / "images" / "test-depths-step0.png"]
    with Image.open(depth.saved[0]) as png:
        # 3 strips (num_images) of original | stem | stage1 (16 px), one to a row (near-square)
        strip_w, strip_h = 3 * 18 + 2, 18 + 2
        assert png.size == (2 + strip_w + 2, 2 + 3 * (strip_h + 2))
