"""Several optimisation steps per Lightning training step (``steps_per_training_step``).

K steps in one training step must be the K = 1 run, bit for bit (same data, schedules
and random draws, in the same order), and a run stopped mid-way with K = 4 must resume
to the uninterrupted result. Compared on one machine, through the same maths.
"""

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset
from trainers import quiet_trainer

from inversion import InversionError
from inversion.data.digits import load_digits_split
from model_inversion.datamodules import (
    ClassTargetsDataModule,
    LatentsDataModule,
    SyntheticImagesDataModule,
)
from model_inversion.lightning_modules import (
    ClassInversion,
    ConditionedGeneratorInversion,
    DominantPatterns,
    LayerwiseInversion,
)

TINY_PII = {"steps_per_stage": 3, "ensemble": 2}  # 7 stages x 3 steps = 21 per batch


class SaveAt(pl.Callback):
    """Save a checkpoint after the training step that reaches each given global step."""

    def __init__(self, dirpath, steps) -> None:
        self.dirpath, self.steps = dirpath, set(steps)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step in self.steps:
            trainer.save_checkpoint(self.dirpath / f"step={trainer.global_step}.ckpt")


def _class_inversion(k: int) -> ClassInversion:
    return ClassInversion(options=TINY_PII, seed=3, steps_per_training_step=k)


def _targets() -> ClassTargetsDataModule:
    # two batches of targets ([0, 6] then [9]), 21 steps each: K = 4 crosses batches
    return ClassTargetsDataModule(num_classes=10, classes=[0, 6, 9], batch_size=2)


def test_class_inversion_k_steps_equal_one_step_and_resume(tmp_path):
    one = _class_inversion(1)
    quiet_trainer(devices=1).fit(one, datamodule=_targets())
    four = _class_inversion(4)
    trainer = quiet_trainer(devices=1, callbacks=[SaveAt(tmp_path, [20])])
    trainer.fit(four, datamodule=_targets())
    assert trainer.global_step == 42  # optimisation steps
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 11  # ceil(42 / 4)
    assert four.times_produced.tolist() == [1, 1, 1]
    torch.testing.assert_close(four.produced, one.produced, rtol=0, atol=0)

    resumed = _class_inversion(4)  # stopped at step 20, inside the first batch's schedule
    trainer = quiet_trainer(devices=1)
    trainer.fit(resumed, datamodule=_targets(), ckpt_path=tmp_path / "step=20.ckpt")
    assert trainer.global_step == 42
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 11  # 5 + 6, no more
    assert resumed.times_produced.tolist() == [1, 1, 1]
    torch.testing.assert_close(resumed.produced, one.produced, rtol=0, atol=0)


def test_steps_per_training_step_must_be_positive():
    with pytest.raises(InversionError, match="at least 1"):
        _class_inversion(0)


def _equal_weights(got: torch.nn.Module, expected: torch.nn.Module) -> None:
    expected_state = expected.state_dict()
    assert got.state_dict().keys() == expected_state.keys()
    for key, value in got.state_dict().items():
        torch.testing.assert_close(value, expected_state[key], rtol=0, atol=0)


def _layerwise(k: int) -> LayerwiseInversion:
    torch.manual_seed(0)
    return LayerwiseInversion(
        classifier="digits:cnn",
        layers=["stem", "stage1"],
        blockwise_steps=3,
        resync_steps=5,  # 3 + 3 + 5 = 11 steps: K = 4 crosses blocks and phases
        export_path=None,
        steps_per_training_step=k,
    )


def _synthetic() -> SyntheticImagesDataModule:
    return SyntheticImagesDataModule(source="smooth", batch_size=4)


def test_layerwise_k_steps_equal_one_step_and_resume(tmp_path):
    one = _layerwise(1)
    quiet_trainer(limit_val_batches=0).fit(one, datamodule=_synthetic())
    four = _layerwise(4)
    trainer = quiet_trainer(limit_val_batches=0, callbacks=[SaveAt(tmp_path, [4])])
    trainer.fit(four, datamodule=_synthetic())
    assert trainer.global_step == 11
    _equal_weights(four, one)
    resumed = _layerwise(4)
    trainer = quiet_trainer(limit_val_batches=0)
    trainer.fit(resumed, datamodule=_synthetic(), ckpt_path=tmp_path / "step=4.ckpt")
    assert trainer.global_step == 11
    _equal_weights(resumed, one)


def _latents() -> LatentsDataModule:
    return LatentsDataModule(batch_size=10, batches_per_epoch=6, val_per_class=2)


def _generator(k: int) -> ConditionedGeneratorInversion:
    return ConditionedGeneratorInversion(
        latent_dim=8, width=8, max_width=32, lr=0.01, warmup_steps=3, steps_per_training_step=k
    )


def test_conditioned_generator_k_steps_equal_one_step_and_resume(tmp_path):
    # max_steps 9 of two epochs of 6 batches: groups 4 + 2, then 3 (cut by max_steps)
    torch.manual_seed(0)  # the training dropout masks
    one = _generator(1)
    quiet_trainer(max_steps=9, limit_val_batches=0).fit(one, datamodule=_latents())
    torch.manual_seed(0)
    four = _generator(4)
    trainer = quiet_trainer(max_steps=9, limit_val_batches=0, callbacks=[SaveAt(tmp_path, [4])])
    trainer.fit(four, datamodule=_latents())
    assert trainer.global_step == 9
    _equal_weights(four.generator, one.generator)
    resumed = _generator(4)  # stopped mid-epoch: the loader and the RNG resume
    trainer = quiet_trainer(max_steps=9, limit_val_batches=0)
    trainer.fit(resumed, datamodule=_latents(), ckpt_path=tmp_path / "step=4.ckpt")
    assert trainer.global_step == 9
    _equal_weights(resumed.generator, one.generator)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.last_epoch == 9  # stepped once per optimisation step


class _Digits(pl.LightningDataModule):
    """Six batches of digits in a fixed order."""

    def train_dataloader(self) -> DataLoader:
        images, labels = load_digits_split("train")
        return DataLoader(TensorDataset(images[:48], labels[:48]), batch_size=8)


def _patterns(k: int) -> DominantPatterns:
    return DominantPatterns(eps=10 / 255, steps_per_training_step=k)


def test_dominant_patterns_k_steps_equal_one_step_and_resume(tmp_path):
    one = _patterns(1)
    quiet_trainer(max_epochs=2).fit(one, datamodule=_Digits())
    four = _patterns(4)
    trainer = quiet_trainer(max_epochs=2, callbacks=[SaveAt(tmp_path, [6])])
    trainer.fit(four, datamodule=_Digits())
    assert trainer.global_step == 12
    _equal_weights(four, one)
    resumed = _patterns(4)  # stopped at the end of the first epoch (a plain loader)
    trainer = quiet_trainer(max_epochs=2)
    trainer.fit(resumed, datamodule=_Digits(), ckpt_path=tmp_path / "step=6.ckpt")
    assert trainer.global_step == 12
    _equal_weights(resumed, one)
