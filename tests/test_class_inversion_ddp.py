"""Class inversion under two-process DDP (gloo, CPU): checkpoints hold every rank's work.

Spawned DDP on CPU is slow (each fit starts two processes): one uninterrupted run saves
every checkpoint the tests resume from or load.
"""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from test_class_inversion import _module, _SaveAt
from trainers import quiet_trainer

from inversion import InversionError
from model_inversion.datamodules import ClassTargetsDataModule
from model_inversion.lightning_modules import ClassInversion

DDP = {"devices": 2, "strategy": "ddp_spawn_independent"}
# five targets dealt to two ranks: rank 0 inverts [0, 2] then [4], rank 1 [1] then [3];
# 21 steps a batch (7 stages x 3 steps), 42 in all
RESUME_POINTS = {"inside_the_first_batch": 5, "inside_the_second_batch": 30}


def _five_targets() -> ClassTargetsDataModule:
    return ClassTargetsDataModule(num_classes=10, classes=[0, 3, 5, 6, 9], batch_size=2)


def _last_checkpoint(dirpath: Path) -> pl.callbacks.ModelCheckpoint:
    """``last.ckpt`` at the end of the schedule, as the digits configs write it."""
    return pl.callbacks.ModelCheckpoint(
        dirpath=dirpath,
        save_last=True,
        save_top_k=0,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted two-process run: its images and its checkpoints' folder."""
    dirpath = tmp_path_factory.mktemp("ddp_uninterrupted")
    module = _module()
    callbacks = [_SaveAt(dirpath, RESUME_POINTS.values()), _last_checkpoint(dirpath)]
    trainer = quiet_trainer(enable_checkpointing=True, callbacks=callbacks, **DDP)
    trainer.fit(module, datamodule=_five_targets())
    assert module.times_produced.tolist() == [1] * 5
    assert (module.produced.flatten(1).std(1) > 0).all()
    return module, dirpath


def test_mid_run_checkpoints_hold_every_ranks_finished_images(uninterrupted):
    whole, dirpath = uninterrupted
    early = torch.load(dirpath / "step=5.ckpt", weights_only=True)
    assert early["state_dict"]["times_produced"].tolist() == [0] * 5
    later = torch.load(dirpath / "step=30.ckpt", weights_only=True)
    assert later["state_dict"]["times_produced"].tolist() == [1, 1, 1, 0, 0]
    finished = later["state_dict"]["produced"][:3]
    torch.testing.assert_close(finished, whole.produced[:3], rtol=0, atol=0)


def test_last_checkpoint_holds_every_ranks_images(uninterrupted, tmp_path):
    whole, dirpath = uninterrupted
    last = dirpath / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 42

    loaded = ClassInversion.load_from_checkpoint(last)
    assert loaded.times_produced.tolist() == [1] * 5
    assert (loaded.produced.flatten(1).abs().amax(1) > 0).all()  # no black image
    torch.testing.assert_close(loaded.produced, whole.produced, rtol=0, atol=0)
    # and what `train.py test --ckpt_path last.ckpt` scores is those images
    outputs = []

    class Collect(pl.Callback):
        def on_test_batch_end(self, trainer, pl_module, out, batch, batch_idx, dl_idx=0):
            outputs.append(out["images"])

    quiet_trainer(devices=1, callbacks=[Collect()]).test(
        _module(), datamodule=_five_targets(), ckpt_path=last
    )
    torch.testing.assert_close(torch.cat(outputs), whole.produced, rtol=0, atol=0)


@pytest.mark.parametrize("step", RESUME_POINTS.values(), ids=RESUME_POINTS.keys())
def test_two_process_resume_gives_the_uninterrupted_run(uninterrupted, step):
    whole, dirpath = uninterrupted
    resumed = _module()
    trainer = quiet_trainer(**DDP)
    trainer.fit(resumed, datamodule=_five_targets(), ckpt_path=dirpath / f"step={step}.ckpt")
    # (a spawned fit hands back rank 0's weights and buffers, not its step count)
    assert resumed.times_produced.tolist() == [1] * 5
    torch.testing.assert_close(resumed.produced, whole.produced, rtol=0, atol=0)


def test_resuming_with_another_number_of_processes_is_refused(uninterrupted, tmp_path):
    _, dirpath = uninterrupted
    trainer = quiet_trainer(devices=1)
    with pytest.raises(InversionError, match="2 processes.*1"):
        trainer.fit(_module(), datamodule=_five_targets(), ckpt_path=dirpath / "step=5.ckpt")

    # a single-process checkpoint, resumed by two processes
    single = tmp_path / "single"
    callbacks = [_SaveAt(single, [5])]
    quiet_trainer(devices=1, callbacks=callbacks, max_steps=5).fit(
        _module(), datamodule=_five_targets()
    )
    trainer = quiet_trainer(**DDP)
    with pytest.raises(Exception, match="1 process.*2"):
        trainer.fit(_module(), datamodule=_five_targets(), ckpt_path=single / "step=5.ckpt")
