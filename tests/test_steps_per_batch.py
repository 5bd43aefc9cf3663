"""Several optimisation steps per Lightning training step (``steps_per_training_step``).

K steps in one training step must be the K = 1 run, bit for bit (same data, schedules
and random draws, in the same order), and a run stopped mid-way with K = 4 must resume
to the uninterrupted result. Compared on one machine, through the same maths.
"""

import lightning.pytorch as pl
import pytest
import torch
from trainers import quiet_trainer

from datamodules import ClassTargetsDataModule
from inversion import InversionError
from lightning_modules import ClassInversion

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
    assert resumed.times_produced.tolist() == [1, 1, 1]
    torch.testing.assert_close(resumed.produced, one.produced, rtol=0, atol=0)


def test_steps_per_training_step_must_be_positive():
    with pytest.raises(InversionError, match="at least 1"):
        _class_inversion(0)
