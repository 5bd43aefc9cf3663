"""Kill a run anywhere, resume it from its checkpoint: the result is the uninterrupted run's.

Every module that trains is run three ways on tiny settings:

- uninterrupted, with the checkpoint callbacks of its shipped digits config (step
  intervals shortened so that they do not divide the run): the newest checkpoint
  (``last.ckpt`` where the config saves one) must hold the final state;
- killed: a checkpoint is written at a chosen point (early in a stage, inside an epoch
  or a schedule, at a batch or epoch boundary, at a mid-epoch validation), then the run
  dies (an exception from a callback, before the next batch);
- resumed from that checkpoint by a fresh module, DataModule and Trainer, with the global
  RNG deliberately disturbed (the checkpoint must restore it), and run to the end.

The resumed run's final weights, buffers and produced images must equal the
uninterrupted run's bit for bit (same code path, same machine). ``RepresentationTools``
trains nothing (test/predict only) and has no case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from trainers import quiet_trainer

from model_inversion.datamodules import (
    ClassTargetsDataModule,
    DigitsDataModule,
    LatentCodesDataModule,
    LatentsDataModule,
    SyntheticImagesDataModule,
)
from model_inversion.lightning_modules import (
    ClassifierModule,
    ClassInversion,
    ConditionedGeneratorInversion,
    DCGANModule,
    DominantPatterns,
    GANInversion,
    LayerwiseInversion,
    RobustClassifierModule,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "digits"


class Killed(Exception):
    """The simulated crash of a training run."""


class KillAt(pl.Callback):
    """Crash the run at the start of the batch after ``global_step`` reaches ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            raise Killed(f"killed at step {trainer.global_step}")


@dataclass(frozen=True)
class Point:
    """Where the killed run's last checkpoint is written.

    ``every``: a ``ModelCheckpoint(every_n_train_steps=every)`` (after a training batch);
    otherwise one with ``every_n_epochs=1`` (at the end of an epoch, or of a validation).
    The run is killed before the batch after step ``kill``.
    """

    kill: int
    every: int | None = None

    def callback(self, dirpath: Path) -> ModelCheckpoint:
        if self.every is not None:
            return ModelCheckpoint(dirpath, every_n_train_steps=self.every, save_last=True)
        return ModelCheckpoint(dirpath, every_n_epochs=1, save_last=True)


@dataclass
class Case:
    """A module, its DataModule and Trainer settings, and where to kill it."""

    module: Callable[[], pl.LightningModule]
    data: Callable[[], pl.LightningDataModule]
    trainer: dict[str, Any]
    steps: int  # global steps of the whole run
    points: dict[str, Point]
    config: str  # the digits config whose checkpoint callbacks are checked


def _tiny_layerwise() -> LayerwiseInversion:
    return LayerwiseInversion(
        classifier="digits:cnn",
        layers=["stem", "stage1"],
        blockwise_steps=3,
        resync_steps=3,
        export_path=None,
    )


CASES: dict[str, Case] = {
    "class_inversion": Case(
        module=lambda: ClassInversion(
            classifier="digits:cnn",
            recipe="pii",
            options={"steps_per_stage": 2, "ensemble": 2},
            image_size=32,
            channels=1,
            seed=1,
        ),
        # two batches of targets ([0, 6], [9]), 7 stages x 2 steps each: 28 steps
        data=lambda: ClassTargetsDataModule(num_classes=10, classes=[0, 6, 9], batch_size=2),
        trainer={},
        steps=28,
        points={
            "mid_schedule": Point(kill=7, every=5),
            "between_batches": Point(kill=15, every=14),
        },
        config="class_inversion_pii.yaml",
    ),
    "classifier": Case(
        module=lambda: ClassifierModule(classifier="digits:cnn", pretrained=False),
        data=lambda: DigitsDataModule(batch_size=32),
        trainer={"max_epochs": 2, "limit_train_batches": 4, "limit_val_batches": 1},
        steps=8,
        points={
            "mid_epoch": Point(kill=3, every=2),
            "between_epochs": Point(kill=5),
        },
        config="classifier.yaml",
    ),
    "robust_training": Case(
        module=lambda: RobustClassifierModule(
            classifier="digits:cnn",
            pretrained=False,
            optimizer="adamw",
            lr=1e-3,
            eps=1.0,
            steps=2,
            random_start=True,
            eval_steps=2,
        ),
        data=lambda: DigitsDataModule(batch_size=16),
        trainer={"max_epochs": 2, "limit_train_batches": 3, "limit_val_batches": 0},
        steps=6,
        points={
            "mid_epoch": Point(kill=2, every=1),
        },
        config="robust_prior_training.yaml",
    ),
    "layerwise": Case(
        module=_tiny_layerwise,
        data=lambda: SyntheticImagesDataModule(source="smooth", batch_size=4, num_val_images=8),
        trainer={"val_check_interval": 0.5, "limit_val_batches": 1},
        steps=9,  # 3 steps for each of 2 blocks, then 3 of re-sync
        points={
            "inside_block_2": Point(kill=5, every=4),
            "at_the_phase_change": Point(kill=7, every=6),
            "after_mid_epoch_validation": Point(kill=5),
        },
        config="layerwise.yaml",
    ),
    "gan_inversion": Case(
        module=lambda: GANInversion(generator="digits:dcgan", width=8, steps=6, seed=3),
        data=lambda: LatentCodesDataModule(latent_dim=32, batch_size=4, num_val=4),
        trainer={"val_check_interval": 0.5, "limit_val_batches": 1},
        steps=6,
        points={
            "mid_schedule": Point(kill=4, every=2),
            "after_mid_epoch_validation": Point(kill=4),
        },
        config="gan_inversion.yaml",
    ),
    "dcgan": Case(
        module=lambda: DCGANModule(latent_dim=8, width=8),
        data=lambda: DigitsDataModule(batch_size=16, max_shift=0),
        trainer={"max_epochs": 2, "limit_train_batches": 3, "limit_val_batches": 1},
        steps=12,  # global_step counts both optimisers' steps: 2 a batch
        points={
            "mid_epoch": Point(kill=2, every=2),
            "between_epochs": Point(kill=6),
        },
        config="gan_inversion_dcgan.yaml",
    ),
    "conditioned_generator": Case(
        module=lambda: ConditionedGeneratorInversion(
            classifier="digits:cnn", latent_dim=8, width=8, max_width=32, lr=0.01
        ),
        data=lambda: LatentsDataModule(batch_size=10, batches_per_epoch=3, val_per_class=1),
        trainer={"max_epochs": 2, "limit_val_batches": 1},
        steps=6,
        points={
            "mid_epoch": Point(kill=3, every=2),
            "between_epochs": Point(kill=4),
        },
        config="conditioned_generator.yaml",
    ),
    "dominant_patterns": Case(
        module=lambda: DominantPatterns(eps=32 / 255),
        data=lambda: DigitsDataModule(batch_size=16, max_shift=0),
        trainer={"max_epochs": 2, "limit_train_batches": 3, "limit_val_batches": 1},
        steps=6,
        points={
            "mid_epoch": Point(kill=2, every=2),
            "between_epochs": Point(kill=4),
        },
        config="dominant_patterns.yaml",
    ),
}


def _final_state(module: pl.LightningModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same_state(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert got.keys() == expected.keys()
    different = [k for k, v in expected.items() if not torch.equal(got[k], v)]
    assert not different, f"differ from the uninterrupted run: {different}"


def _fit(case: Case, root: Path, callbacks: list, ckpt_path: Path | None = None) -> pl.Trainer:
    module, data = case.module(), case.data()
    trainer = quiet_trainer(
        default_root_dir=str(root),
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        callbacks=callbacks,
        **case.trainer,
    )
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return trainer


def _config_checkpoints(case: Case, dirpath: Path) -> list[ModelCheckpoint]:
    """The config's ModelCheckpoints (Lightning's default if none), step intervals shortened."""
    callbacks = yaml.safe_load((CONFIGS / case.config).read_text())["trainer"].get("callbacks")
    entries = [c for c in callbacks or [] if c["class_path"].endswith("ModelCheckpoint")]
    checkpoints = []
    for entry in entries or [{}]:
        args = dict(entry.get("init_args") or {}, dirpath=str(dirpath))
        if args.get("every_n_train_steps"):
            args["every_n_train_steps"] = case.steps // 2 + 1  # does not divide the run
        checkpoints.append(ModelCheckpoint(**args))
    return checkpoints


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The uninterrupted run of each case (on demand): its final state and checkpoints."""
    runs: dict[str, tuple[dict[str, torch.Tensor], pl.Trainer, Path]] = {}

    def run(name: str):
        if name not in runs:
            case = CASES[name]
            dirpath = tmp_path_factory.mktemp(f"{name}-uninterrupted")
            torch.manual_seed(0)
            trainer = _fit(case, dirpath, _config_checkpoints(case, dirpath / "checkpoints"))
            assert trainer.global_step == case.steps
            runs[name] = (_final_state(trainer.lightning_module), trainer, dirpath / "checkpoints")
        return runs[name]

    return run


POINTS = [(name, point) for name, case in CASES.items() for point in case.points]


@pytest.mark.parametrize(("name", "point"), POINTS, ids=[f"{n}-{p}" for n, p in POINTS])
def test_killed_and_resumed_run_equals_the_uninterrupted_run(uninterrupted, tmp_path, name, point):
    case = CASES[name]
    expected, _, _ = uninterrupted(name)
    where = case.points[point]
    torch.manual_seed(0)
    with pytest.raises(Killed):
        _fit(case, tmp_path / "killed", [where.callback(tmp_path / "ckpts"), KillAt(where.kill)])
    last = tmp_path / "ckpts" / "last.ckpt"
    saved = torch.load(last, weights_only=True)["global_step"]
    assert 0 < saved <= where.kill < case.steps

    torch.manual_seed(12345)  # a fresh process's RNG: the checkpoint restores the run's
    resumed = _fit(case, tmp_path / "resumed", [], ckpt_path=last)
    assert resumed.global_step == case.steps
    _assert_same_state(_final_state(resumed.lightning_module), expected)


@pytest.mark.parametrize("name", list(CASES))
def test_the_last_checkpoint_holds_the_final_state(uninterrupted, name):
    expected, trainer, dirpath = uninterrupted(name)
    files = sorted(dirpath.glob("*.ckpt"))
    assert files, f"{CASES[name].config}: no checkpoint written"
    last = dirpath / "last.ckpt"
    if not last.is_file():  # no save_last: the newest checkpoint is the last one
        last = max(files, key=lambda p: torch.load(p, weights_only=True)["global_step"])
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == trainer.global_step, CASES[name].config
    state = {k: v for k, v in saved["state_dict"].items()}
    _assert_same_state(state, expected)


def _checkpoint_args(config: Path) -> list[dict]:
    callbacks = yaml.safe_load(config.read_text())["trainer"].get("callbacks") or []
    return [
        c.get("init_args") or {} for c in callbacks if c["class_path"].endswith("ModelCheckpoint")
    ]


def test_every_config_that_saves_by_steps_also_saves_when_the_run_ends():
    """A step interval rarely divides the run: last.ckpt must also be written at its end."""
    configs = sorted(CONFIGS.parent.glob("*/*.yaml"))
    by_steps = [
        c for c in configs if any(a.get("every_n_train_steps") for a in _checkpoint_args(c))
    ]
    assert len(by_steps) >= 10
    for config in by_steps:
        assert any(
            a.get("every_n_epochs") == 1 and a.get("save_last") for a in _checkpoint_args(config)
        ), config
