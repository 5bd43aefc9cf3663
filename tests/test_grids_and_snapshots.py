"""Grids a person can read at every scale, and snapshots of long runs (TensorBoard, CSV)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset

from inversion.models import build_classifier
from model_inversion import train
from model_inversion.callbacks import DepthGrid, ImageGrid, Snapshots
from model_inversion.callbacks.layout import cells, class_sheet, pair_cells, strip_cells, tile
from model_inversion.callbacks.selection import RoundRobin
from model_inversion.callbacks.snapshot_sources import verifier_top1
from model_inversion.datamodules import ClassTargetsDataModule, LatentsDataModule
from model_inversion.lightning_modules import ClassInversion, ConditionedGeneratorInversion

REPO = Path(__file__).resolve().parents[1]
CLASSES = 10
# class k's images are all (10 + 20 k) / 255: exact in a PNG, apart from the grid's white
# (255) and grey (128) lines
SHADES = [(10 + 20 * k) / 255 for k in range(CLASSES)]


def ratio(grid: torch.Tensor) -> float:
    return grid.shape[-1] / grid.shape[-2]


def shaded(labels: torch.Tensor, size: int = 8) -> torch.Tensor:
    """One flat grey image per label, its shade naming its class."""
    shades = torch.tensor(SHADES)[labels]
    return shades.view(-1, 1, 1, 1).expand(-1, 1, size, size).clone()


def shades_in(png: Path) -> set[int]:
    with Image.open(png) as image:
        return set(np.unique(np.asarray(image)).tolist())


# --- the layout -----------------------------------------------------------------------------
@pytest.mark.parametrize("classes", [1, 10, 64, 1000])
@pytest.mark.parametrize("per_class", [1, 4, 10])
def test_class_grids_are_near_square(classes, per_class):
    labels = torch.arange(classes).repeat_interleave(per_class)
    grid = class_sheet(cells(torch.rand(len(labels), 1, 8, 8)), labels, per_class)
    assert 0.5 <= ratio(grid) <= 2, (classes, per_class, tuple(grid.shape))


def test_one_image_of_64_classes_is_eight_by_eight():
    grid = class_sheet(cells(torch.rand(64, 3, 32, 32)), torch.arange(64), 1)
    assert grid.shape == (3, 8 * 34 + 2, 8 * 34 + 2)  # 32 px images, 2 px lines


def test_classes_are_in_reading_order():
    labels = torch.tensor([7, 2, 9, 0, 5, 1, 3, 8, 4, 6])  # any order in, ascending out
    grid = class_sheet(cells(shaded(labels)), labels, 1)
    columns = 4  # 10 cells of 8 px, near-square: 4 x 3 (two blank places)
    assert grid.shape == (3, 3 * 10 + 2, columns * 10 + 2)
    for k in range(CLASSES):
        row, column = divmod(k, columns)
        cell = grid[0, 2 + row * 10 : 10 + row * 10, 2 + column * 10 : 10 + column * 10]
        assert torch.allclose(cell, torch.full_like(cell, SHADES[k])), k


def test_a_class_keeps_its_images_together_on_one_line():
    labels = torch.arange(10).repeat_interleave(4)
    grid = class_sheet(cells(shaded(labels)), labels, 4)
    # a class is a block of 1 x 4 cells (8 px + 2 px lines, in a 2 px grey frame):
    # two blocks to a row, five rows: 8 cells across, 5 down
    block_w, block_h = 4 * 10 + 2, 10 + 2
    assert grid.shape == (3, 5 * (block_h + 2) + 2, 2 * (block_w + 2) + 2)
    for k in range(CLASSES):
        row, column = divmod(k, 2)
        top, left = 2 + row * (block_h + 2) + 2, 2 + column * (block_w + 2) + 2
        for i in range(4):
            cell = grid[0, top : top + 8, left + i * 10 : left + i * 10 + 8]
            assert torch.allclose(cell, torch.full_like(cell, SHADES[k])), (k, i)


def test_unlabelled_runs_of_per_class_images_stay_together():
    """E.g. the robust prior's interpolation rows ``[x1, mixtures..., x2]``, unlabelled."""
    rows = torch.arange(10).repeat_interleave(4)
    grid = class_sheet(cells(shaded(rows)), None, 4)
    labelled = class_sheet(cells(shaded(rows)), rows, 4)
    torch.testing.assert_close(grid, labelled)  # each run of four is one block, in order


def test_pairs_keep_originals_above_their_reconstructions():
    originals, images = torch.zeros(12, 1, 8, 8), torch.ones(12, 1, 8, 8)
    labels = torch.arange(3).repeat_interleave(4)
    grid = class_sheet(pair_cells(images, originals), labels, 4)
    assert 0.5 <= ratio(grid) <= 2
    pair = pair_cells(images[:1], originals[:1])[0]
    assert pair.shape == (3, 2 * 10 + 2, 10 + 2)
    assert pair[:, 2:10, 2:10].max() == 0 and pair[:, 12:20, 2:10].min() == 1


def test_depth_strips_wrap_to_near_square():
    strips = strip_cells(torch.rand(16, 1, 8, 8), [torch.rand(16, 1, 8, 8)] * 5)
    assert strips.shape == (16, 3, 12, 6 * 10 + 2)  # original and five depths in a row
    grid = tile(strips)
    assert 0.5 <= ratio(grid) <= 2 and grid.shape[-1] > strips.shape[-1]


# --- which images: every class ----------------------------------------------------------------
def test_round_robin_takes_every_class_of_a_sorted_stream():
    picker = RoundRobin[int](total=16)
    labels = [k for k in range(CLASSES) for _ in range(20)]  # sorted by class, 20 each
    for start in range(0, len(labels), 30):
        batch = labels[start : start + 30]
        picker.add(batch, len(batch), lambda positions, s=start: [s + p for p in positions])
    picked = picker.pick()
    assert [label for label, _ in picked] == sorted([*range(10), *range(6)])
    for label, item in picked:  # within a class, the first to arrive
        assert labels[item] == label and item - 20 * label < 2
    assert sum(len(kept) for kept in picker.by_class.values()) <= 2 * CLASSES  # bounded


def test_round_robin_keeps_the_lowest_classes_and_a_cap_per_class():
    picker = RoundRobin[int](total=8, per_class=2, max_classes=4)
    labels = [9, 9, 9, 5, 3, 8, 1, 1, 1, 0, 2]
    picker.add(labels, len(labels), lambda positions: positions)
    assert [label for label, _ in picker.pick()] == [0, 1, 1, 2, 3]


class _Sorted(pl.LightningModule):
    """Test steps return shaded images sorted by class (one class per batch), with pairs."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def test_step(self, batch, batch_idx):
        images, labels = batch
        if self.kind == "images":
            return {"images": images, "labels": labels}
        if self.kind == "pairs":
            return {"images": images, "labels": labels, "originals": images}
        return {
            "images": images,
            "labels": labels,
            "originals": images,
            "depths": {"a": images, "b": images},
        }


@pytest.mark.parametrize("kind", ["images", "pairs", "depths"])
def test_grids_show_every_class_of_a_loader_sorted_by_class(kind, tmp_path):
    labels = torch.arange(CLASSES).repeat_interleave(12)
    loader = DataLoader(TensorDataset(shaded(labels), labels), batch_size=12)
    callback = DepthGrid(num_images=10) if kind == "depths" else ImageGrid(per_class=2)
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=CSVLogger(str(tmp_path), name="run"),
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.test(_Sorted(kind), dataloaders=loader)
    (png,) = callback.saved
    assert {round(s * 255) for s in SHADES} <= shades_in(png)  # every class is in the grid
    with Image.open(png) as image:
        assert 0.5 <= image.size[0] / image.size[1] <= 2


# --- snapshots of class inversion -------------------------------------------------------------
def _inversion(tmp_path: Path, snapshots: Snapshots, batch_size: int, steps_per_training_step=1):
    """PII on digits:cnn: 3 zoom stages of 2 steps, one image of each class."""
    module = ClassInversion(
        classifier="digits:cnn",
        recipe="pii",
        options={"ensemble": 1, "zoom_stages": 3, "steps_per_stage": 2},
        steps_per_training_step=steps_per_training_step,
    )
    data = ClassTargetsDataModule(num_classes=CLASSES, batch_size=batch_size)
    loggers = [CSVLogger(str(tmp_path), name="csv"), TensorBoardLogger(str(tmp_path), name="tb")]
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=loggers,
        callbacks=[snapshots],
        max_epochs=1,
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    pl.seed_everything(0)
    trainer.fit(module, datamodule=data)
    return trainer, module, loggers


def test_class_inversion_snapshots_at_every_stage_end(tmp_path):
    snapshots = Snapshots(per_class=1, max_classes=CLASSES, verifiers=["digits:mlp"])
    trainer, module, (table, board) = _inversion(tmp_path, snapshots, batch_size=CLASSES)
    assert trainer.global_step == 6
    assert [entry["step"] for entry in snapshots.logged] == [2, 4, 6]
    assert [path.name for path in snapshots.saved] == [
        f"snapshot-batch0-stage{s}-step{2 * s}.png" for s in (1, 2, 3)
    ]
    for path in snapshots.saved:  # PNG files in the CSV logger's folder (the run dir)
        assert path.parent == Path(table.log_dir) / "images" and path.is_file()
        with Image.open(path) as image:
            assert 0.5 <= image.size[0] / image.size[1] <= 2
    events = EventAccumulator(board.log_dir, size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert [event.step for event in events.Images("snapshot/images")] == [2, 4, 6]
    top1 = events.Scalars("snapshot/top1_digits-mlp")
    assert [event.step for event in top1] == [2, 4, 6]
    # the last snapshot is of the finished images: the verifier's top-1 on them
    verifier = {"digits-mlp": build_classifier("digits:mlp").freeze()}
    finished = verifier_top1(verifier, module.produced, torch.arange(CLASSES))
    assert top1[-1].value == pytest.approx(finished["top1_digits-mlp"], abs=1e-6)
    assert "snapshot/top1_digits-mlp" in (Path(table.log_dir) / "metrics.csv").read_text()


def test_class_inversion_snapshots_of_every_nth_target_batch(tmp_path):
    snapshots = Snapshots(per_class=1, every_n_target_batches=2, verifiers=[])
    trainer, _, _ = _inversion(tmp_path, snapshots, batch_size=4)  # 3 batches of targets
    assert trainer.global_step == 18
    assert [entry["step"] for entry in snapshots.logged] == [2, 4, 6, 14, 16, 18]
    assert all("top1_verifiers" not in entry for entry in snapshots.logged)


def test_grouped_steps_take_the_same_snapshots(tmp_path):
    def pngs(k: int) -> list[np.ndarray]:
        snapshots = Snapshots(per_class=1, verifiers=[])
        _inversion(tmp_path / f"k{k}", snapshots, CLASSES, steps_per_training_step=k)
        assert [entry["step"] for entry in snapshots.logged] == [2, 4, 6]
        return [np.asarray(Image.open(path)) for path in snapshots.saved]

    for one, two in zip(pngs(1), pngs(2), strict=True):
        np.testing.assert_array_equal(one, two)


# --- snapshots of generator training ----------------------------------------------------------
def _generator_run(tmp_path: Path, callbacks: list) -> ConditionedGeneratorInversion:
    pl.seed_everything(0)
    module = ConditionedGeneratorInversion(latent_dim=8, width=4, max_width=16)
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=TensorBoardLogger(str(tmp_path), name="run"),
        callbacks=callbacks,
        max_steps=4,
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(module, datamodule=LatentsDataModule(batch_size=8, batches_per_epoch=4))
    return module


def test_generator_snapshots_every_n_steps_leave_training_unchanged(tmp_path):
    snapshots = Snapshots(every_n_steps=2, per_class=2, verifiers=["digits:mlp"])
    module = _generator_run(tmp_path / "with", [snapshots])
    assert [entry["step"] for entry in snapshots.logged] == [2, 4]
    assert all(0 <= entry["top1_digits-mlp"] <= 1 for entry in snapshots.logged)
    assert snapshots.logged[0]["shape"] == snapshots.logged[1]["shape"]
    events = EventAccumulator(str(snapshots.saved[0].parents[1]), size_guidance={"images": 0})
    events.Reload()
    assert [event.step for event in events.Images("snapshot/images")] == [2, 4]
    plain = _generator_run(tmp_path / "without", [])
    for name, value in module.generator.state_dict().items():
        torch.testing.assert_close(value, plain.generator.state_dict()[name], rtol=0, atol=0)


# --- the ImageNet PII config --------------------------------------------------------------------
def test_imagenet_pii_config_grids_are_near_square(tmp_path, monkeypatch):
    """The ViT/ImageNet PII config, 32 px, a tiny ViT, 64 classes: its TensorBoard grids."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py"])
    config = REPO / "configs/paper/class_inversion_pii_vit_base_patch16_384.yaml"
    data = yaml.safe_load(config.read_text())
    model, targets = data["model"]["init_args"], data["data"]["init_args"]
    model.update(classifier="timm:vit_tiny_patch16_224", pretrained=False, input_size=32)
    model.update(image_size=32, options={**model["options"], "ensemble": 1, "steps_per_stage": 1})
    targets.update(classes=list(range(64)), batch_size=64)
    callbacks = data["trainer"]["callbacks"]
    data["trainer"]["callbacks"] = [c for c in callbacks if "ImageMetrics" not in c["class_path"]]
    small = tmp_path / config.name
    small.write_text(yaml.safe_dump(data))
    cli = train.main(
        [
            "fit",
            "--config",
            str(small),
            "--config",
            "logging/tensorboard.yaml",
            "--trainer.accelerator=cpu",
            "--trainer.precision=32-true",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert cli.trainer.global_step == 7  # seven zoom stages of one step
    events = EventAccumulator(cli.trainer.log_dir, size_guidance={"images": 0})
    events.Reload()
    (grid,) = events.Images("val/images")
    print(f"ImageNet PII val/images grid: {grid.width} x {grid.height} px")
    assert (grid.width, grid.height) == (8 * 34 + 2, 8 * 34 + 2)  # 8 x 8 of 32 px images
    snapshots = events.Images("snapshot/images")
    assert [event.step for event in snapshots] == list(range(1, 8))
    for event in snapshots:
        assert 0.5 <= event.width / event.height <= 2
