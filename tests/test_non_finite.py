"""A NaN or infinite training loss stops the run with one clear message (and exit 2)."""

import math
from pathlib import Path

import pytest
import torch
from test_class_inversion import TINY_PII
from torch.utils.data import DataLoader, TensorDataset
from trainers import quiet_trainer

from inversion.errors import InversionError
from model_inversion import train
from model_inversion.datamodules import ClassTargetsDataModule, DigitsDataModule
from model_inversion.lightning_modules import BaseTask, ClassInversion, DCGANModule
from model_inversion.lightning_modules.classifier import ClassifierModule

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "digits" / "classifier.yaml"
MESSAGE = r"train loss is (nan|infinite) at step \d+: the learning rate may be too high"


def _poison(model: torch.nn.Module) -> None:
    with torch.no_grad():
        next(p for p in model.parameters() if p.dim() > 1).view(-1)[0] = math.nan


def test_nan_weight_stops_at_the_first_checked_step():
    module = ClassifierModule(classifier="digits:cnn")
    _poison(module.model)
    trainer = quiet_trainer(max_steps=30, log_every_n_steps=10, limit_val_batches=0)
    with pytest.raises(InversionError, match=r"train loss is nan at step 1: "):
        trainer.fit(module, datamodule=DigitsDataModule(batch_size=16))
    assert trainer.global_step == 1


def test_huge_learning_rate_stops_with_the_message():
    module = ClassifierModule(classifier="digits:cnn", lr=1e30)
    trainer = quiet_trainer(max_steps=40, log_every_n_steps=2, limit_val_batches=0)
    with pytest.raises(InversionError, match=MESSAGE):
        trainer.fit(module, datamodule=DigitsDataModule(batch_size=16))
    assert trainer.global_step < 40


def test_logged_loss_of_manual_optimisation_is_checked():
    """Class inversion returns None from its training step and logs its loss."""
    module = ClassInversion(
        classifier="digits:cnn", recipe="pii", options=TINY_PII, image_size=32, channels=1
    )
    _poison(module.classifier)
    data = ClassTargetsDataModule(num_classes=10, classes=[1, 2], batch_size=2)
    trainer = quiet_trainer(devices=1, log_every_n_steps=5)
    with pytest.raises(InversionError, match=r"train loss is nan at step 1: "):
        trainer.fit(module, datamodule=data)


def test_cli_ends_with_one_error_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        "--config",
        str(CONFIG),
        "--model.init_args.classifier=digits:cnn",
        "--model.init_args.lr=1e30",
        "--trainer.max_steps=40",
        "--trainer.log_every_n_steps=2",
        "--trainer.limit_val_batches=0",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.logger=false",
    ]
    monkeypatch.setattr("sys.argv", ["train.py", *args])
    with pytest.raises(SystemExit) as exit_info:
        train.run_from_command_line()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: train loss is")
    assert "Traceback" not in "\n".join(err)


def test_a_normal_run_is_unaffected():
    module = ClassifierModule(classifier="digits:cnn")
    trainer = quiet_trainer(max_steps=6, log_every_n_steps=1, limit_val_batches=0)
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=16))
    assert trainer.global_step == 6


# --- produced images and epoch metrics -------------------------------------------------
class _Produces(BaseTask):
    """Returns images filled with ``fill``; logs ``metric`` and ``loss`` in every step."""

    def __init__(self, fill: float = 0.5, metric: float = 1.0, loss: float = 1.0) -> None:
        super().__init__()

    def configure_models(self) -> None:
        self.fill = torch.nn.Parameter(torch.tensor(self.hparams.fill))

    def _step(self, batch, batch_idx, stage: str) -> dict:
        self.log(f"{stage}/score", torch.tensor(self.hparams.metric))
        self.log(f"{stage}/loss", torch.tensor(self.hparams.loss))
        return {"images": self.fill.expand(len(batch[0]), 1, 4, 4)}

    def validation_step(self, batch, batch_idx):
        return self._step(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx):
        return self._step(batch, batch_idx, "test")


def _loader():
    return DataLoader(TensorDataset(torch.zeros(6, 1)), batch_size=2)


@pytest.mark.parametrize("fill", [math.nan, math.inf])
def test_non_finite_produced_images_stop_the_run(fill):
    kind = "nan" if math.isnan(fill) else "infinite"
    with pytest.raises(InversionError, match=rf"the validation images are {kind} at step 0 \("):
        quiet_trainer().validate(_Produces(fill=fill), dataloaders=_loader())
    with pytest.raises(InversionError, match=r"the test images are .* check the checkpoint"):
        quiet_trainer().test(_Produces(fill=fill), dataloaders=_loader())


def test_nan_loss_metric_stops_the_run_and_names_it():
    with pytest.raises(InversionError, match=r"validation loss is nan at step 0: val/loss;"):
        quiet_trainer().validate(_Produces(loss=math.nan), dataloaders=_loader())


def test_other_nan_metrics_warn_and_infinite_ones_pass():
    """NaN can mean "nothing to measure" (diversity of one sample); PSNR can be +inf."""
    with pytest.warns(UserWarning, match=r"test metrics are nan at step 0: test/score \("):
        quiet_trainer().test(_Produces(metric=math.nan), dataloaders=_loader())
    (results,) = quiet_trainer().test(_Produces(metric=math.inf), dataloaders=_loader())
    assert results["test/score"] == math.inf


def test_nan_classifier_weights_stop_validation_with_the_metric_named():
    module = ClassifierModule(classifier="digits:cnn")
    _poison(module.model)
    trainer = quiet_trainer(limit_val_batches=1)
    with pytest.raises(InversionError, match=r"validation loss is nan at step 0: val/loss;"):
        trainer.validate(module, datamodule=DigitsDataModule(batch_size=16))


def test_nan_generator_stops_at_its_first_test_images():
    module = DCGANModule(latent_dim=8, width=8)
    _poison(module.generator)
    trainer = quiet_trainer(limit_test_batches=2)
    with pytest.raises(InversionError, match=r"the test images are nan at step 0 \(batch 0\)"):
        trainer.test(module, datamodule=DigitsDataModule(batch_size=8))
