"""A classifier checkpoint loads on its own: the starting weights file may be gone."""

from __future__ import annotations

import shutil

import lightning
import pytest
import torch
from trainers import quiet_trainer

from inversion.errors import InversionError
from inversion.models import build_classifier
from inversion.models.weights import load_checkpoint_file
from model_inversion.datamodules import DigitsDataModule
from model_inversion.lightning_modules import ClassifierModule, ClassInversion


def fit_and_save(module: ClassifierModule, path) -> ClassifierModule:
    trainer = quiet_trainer(max_steps=2, limit_val_batches=0)
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=16))
    trainer.save_checkpoint(path)
    return module.eval()


@pytest.fixture
def weights_file(tmp_path):
    torch.manual_seed(3)
    path = tmp_path / "start" / "cnn.pt"
    path.parent.mkdir()
    torch.save(build_classifier("digits:cnn", pretrained=False).net.state_dict(), path)
    return path


def moved(path, tmp_path):
    """The checkpoint in another folder, as on another machine."""
    target = tmp_path / "elsewhere" / path.name
    target.parent.mkdir(exist_ok=True)
    shutil.move(path, target)
    return target


def test_checkpoint_loads_and_tests_without_its_starting_weights(tmp_path, weights_file):
    trained = fit_and_save(
        ClassifierModule(classifier="digits:cnn", weights=str(weights_file)),
        tmp_path / "run" / "last.ckpt",
    )
    weights_file.unlink()
    ckpt = moved(tmp_path / "run" / "last.ckpt", tmp_path)
    with pytest.raises(InversionError, match="not found"):  # the old way needs the file
        ClassifierModule(classifier="digits:cnn", weights=str(weights_file))

    hparams = load_checkpoint_file(ckpt)["hyper_parameters"]
    assert hparams["weights"] is None and hparams["pretrained"] is False
    assert hparams["initialised_from"]["weights"] == str(weights_file)

    images = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        expected = trained(images)
        loaded = ClassifierModule.load_from_checkpoint(ckpt).eval()
        torch.testing.assert_close(loaded(images), expected)
        torch.testing.assert_close(build_classifier(str(ckpt))(images), expected)
    results = quiet_trainer(limit_test_batches=2).test(
        loaded, datamodule=DigitsDataModule(batch_size=16), verbose=False
    )
    assert 0.0 <= results[0]["test/acc"] <= 1.0


def test_checkpoint_of_a_fine_tuned_checkpoint_needs_neither(tmp_path, weights_file):
    """Fine-tuned from a checkpoint (the spec is a path) from a weights file: both gone."""
    fit_and_save(
        ClassifierModule(classifier="digits:cnn", weights=str(weights_file)),
        tmp_path / "first.ckpt",
    )
    second = fit_and_save(
        ClassifierModule(classifier=str(tmp_path / "first.ckpt")), tmp_path / "second.ckpt"
    )
    weights_file.unlink()
    (tmp_path / "first.ckpt").unlink()
    ckpt = moved(tmp_path / "second.ckpt", tmp_path)
    hparams = load_checkpoint_file(ckpt)["hyper_parameters"]
    assert hparams["classifier"] == "digits:cnn"
    assert hparams["initialised_from"]["classifier"] == str(tmp_path / "first.ckpt")
    images = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(
            ClassifierModule.load_from_checkpoint(ckpt).eval()(images), second(images)
        )
        torch.testing.assert_close(build_classifier(str(ckpt))(images), second(images))


def test_checkpoint_from_scratch_keeps_its_hyperparameters(tmp_path):
    fit_and_save(ClassifierModule(classifier="digits:cnn"), tmp_path / "scratch.ckpt")
    hparams = load_checkpoint_file(tmp_path / "scratch.ckpt")["hyper_parameters"]
    assert "initialised_from" not in hparams
    assert hparams["classifier"] == "digits:cnn" and hparams["in_chans"] == 1


def test_target_task_checkpoint_names_the_missing_target_weights(tmp_path, weights_file):
    """A frozen target is not saved (rebuilt from its spec): a missing file is named."""
    module = ClassInversion(classifier="digits:cnn", weights=str(weights_file), image_size=28)
    ckpt = tmp_path / "inversion.ckpt"
    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": lightning.__version__,
    }
    torch.save(checkpoint, ckpt)
    weights_file.unlink()
    with pytest.raises(InversionError, match=str(weights_file.name)):
        ClassInversion.load_from_checkpoint(ckpt)
