from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from trainers import quiet_trainer

from inversion import InversionError, build_classifier
from inversion.attacks import PGD
from inversion.data.digits import load_digits_split
from inversion.robust_prior import default_step_size
from inversion.training import accuracy
from model_inversion import train
from model_inversion.datamodules import DigitsDataModule
from model_inversion.lightning_modules import RobustClassifierModule

REPO = Path(__file__).resolve().parents[1]


def test_training_batches_are_adversarial_and_evaluation_reports_robust_accuracy():
    # the trained digits:cnn, with a learning rate of 0: its accuracy on the training
    # batches (PGD examples) must be far below its clean accuracy
    module = RobustClassifierModule(
        classifier="digits:cnn",
        pretrained=True,
        optimizer="adamw",
        lr=0.0,
        eps=1.5,
        extra_eval_eps=[0.5],
        full_robust_eval=True,
    )
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=2)
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=64, max_shift=0))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert metrics["val/acc"] > 0.9
    assert metrics["train/acc"] < 0.5 * metrics["val/acc"]
    assert metrics["val/robust_acc"] < metrics["val/robust_acc_eps0.5"] < metrics["val/acc"]


def test_robust_accuracy_equals_a_plain_pgd_evaluation():
    images, labels = load_digits_split("val")
    module = RobustClassifierModule(
        classifier="digits:cnn", pretrained=True, eps=1.0, full_robust_eval=True
    )
    trainer = quiet_trainer()
    results = trainer.validate(module, datamodule=DigitsDataModule(batch_size=90))[0]
    model = build_classifier("digits:cnn").freeze()
    attack = PGD(1.0, default_step_size(1.0, 20), 20, "l2")
    expected = accuracy(model, attack(model, images, labels), labels)
    assert results["val/robust_acc"] == pytest.approx(expected, abs=1e-6)
    assert results["val/acc"] == pytest.approx(accuracy(model, images, labels), abs=1e-6)


def record_attacks(monkeypatch) -> list[tuple[float, int, bool, int]]:
    """Every PGD call from now on, as (eps, steps, random_start, number of images)."""
    calls: list[tuple[float, int, bool, int]] = []
    attack = PGD.__call__

    def recording(self, model, images, *args, **kwargs):
        calls.append((self.eps, self.steps, self.random_start, images.shape[0]))
        return attack(self, model, images, *args, **kwargs)

    monkeypatch.setattr(PGD, "__call__", recording)
    return calls


def test_default_validation_attacks_a_fixed_subset_with_the_training_attack(monkeypatch):
    # 180 validation digits in 12 batches of 16: clean accuracy on all of them, the
    # training attack (3 steps, no random start) on the first 2 batches only, whatever the
    # split's size; and the estimate is a plain PGD evaluation of those 32 images
    calls = record_attacks(monkeypatch)
    module = RobustClassifierModule(
        classifier="digits:cnn",
        pretrained=True,
        eps=1.0,
        steps=3,
        random_start=True,
        eval_steps=2,
        extra_eval_eps=[0.5],
    )
    datamodule = DigitsDataModule(batch_size=16)
    results = quiet_trainer().validate(module, datamodule=datamodule)[0]
    assert set(results) == {"val/loss", "val/acc", "val/acc_top5", "val/robust_acc_subset"}
    assert calls == [(1.0, 3, False, 16), (1.0, 3, False, 16)]
    images, labels = load_digits_split("val")
    model = build_classifier("digits:cnn").freeze()
    attack = PGD(1.0, default_step_size(1.0, 3), 3, "l2")
    correct = sum(
        float(
            accuracy(
                model, attack(model, images[i : i + 16], labels[i : i + 16]), labels[i : i + 16]
            )
        )
        * 16
        for i in (0, 16)
    )
    assert results["val/robust_acc_subset"] == pytest.approx(correct / 32, abs=1e-6)
    assert results["val/acc"] == pytest.approx(accuracy(model, images, labels), abs=1e-6)
    # test is always the full evaluation: every eps, eval_steps steps, every batch
    calls.clear()
    results = quiet_trainer(limit_test_batches=3).test(module, datamodule=datamodule)[0]
    assert {"test/acc", "test/robust_acc", "test/robust_acc_eps0.5"} <= set(results)
    assert sorted(calls) == sorted([(1.0, 2, False, 16), (0.5, 2, False, 16)] * 3)


def test_full_robust_eval_attacks_every_batch_at_every_eps(monkeypatch):
    calls = record_attacks(monkeypatch)
    module = RobustClassifierModule(
        classifier="digits:cnn",
        pretrained=True,
        eps=1.0,
        steps=3,
        eval_steps=2,
        extra_eval_eps=[0.5],
        full_robust_eval=True,
    )
    results = quiet_trainer().validate(module, datamodule=DigitsDataModule(batch_size=45))[0]
    assert set(results) == {
        "val/loss",
        "val/acc",
        "val/acc_top5",
        "val/robust_acc",
        "val/robust_acc_eps0.5",
    }
    assert sorted(calls) == sorted([(1.0, 2, False, 45), (0.5, 2, False, 45)] * 4)


def test_subset_estimate_during_fit_and_none_with_zero_batches(monkeypatch):
    calls = record_attacks(monkeypatch)
    module = RobustClassifierModule(
        classifier="digits:cnn",
        pretrained=False,
        steps=2,
        random_start=True,
        robust_subset_batches=1,
    )
    trainer = quiet_trainer(max_epochs=2, limit_train_batches=2)
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=32))
    assert "val/robust_acc_subset" in trainer.callback_metrics
    assert "val/robust_acc" not in trainer.callback_metrics
    # per epoch: 2 training batches (random start), then 1 of the 6 validation batches
    assert calls == [(0.5, 2, True, 32), (0.5, 2, True, 32), (0.5, 2, False, 32)] * 2
    calls.clear()
    module = RobustClassifierModule(classifier="digits:cnn", robust_subset_batches=0)
    results = quiet_trainer().validate(module, datamodule=DigitsDataModule(batch_size=90))[0]
    assert calls == [] and set(results) == {"val/loss", "val/acc", "val/acc_top5"}


class StopAfterFirstEpoch(pl.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


def test_checkpoint_is_a_classifier_spec_and_resume_continues_the_same_run(tmp_path):
    def run(name: str, callbacks=(), ckpt_path=None) -> pl.Trainer:
        pl.seed_everything(0)
        module = RobustClassifierModule(
            classifier="digits:cnn",
            pretrained=False,
            optimizer="adamw",
            lr=1e-3,
            eps=1.0,
            steps=2,
            random_start=True,
        )
        checkpoint = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / name, save_last=True)
        trainer = quiet_trainer(
            max_epochs=2,
            limit_train_batches=3,
            limit_val_batches=0,
            enable_checkpointing=True,
            callbacks=[*callbacks, checkpoint],
        )
        trainer.fit(module, datamodule=DigitsDataModule(batch_size=32), ckpt_path=ckpt_path)
        return trainer

    straight = run("straight")
    interrupted = run("interrupted", [StopAfterFirstEpoch()])
    assert interrupted.current_epoch == 1 and interrupted.global_step == 3
    resumed = run("resumed", ckpt_path=tmp_path / "interrupted" / "last.ckpt")
    assert resumed.global_step == straight.global_step == 6
    for (name, a), b in zip(
        straight.lightning_module.state_dict().items(),
        resumed.lightning_module.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b), name
    model = build_classifier(str(tmp_path / "straight" / "last.ckpt"))
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)


def test_bad_attack_settings_are_one_clear_error(tmp_path, monkeypatch, capsys):
    with pytest.raises(InversionError, match="norm"):
        RobustClassifierModule(norm="l3")
    with pytest.raises(InversionError, match="robust_subset_batches"):
        RobustClassifierModule(robust_subset_batches=-1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        "sys.argv",
        [
            "train.py",
            "fit",
            "--config",
            str(REPO / "configs/digits/robust_prior_training.yaml"),
            "--model.init_args.eps=-1",
            "--trainer.fast_dev_run=true",
        ],
    )
    with pytest.raises(SystemExit) as exit_info:
        train.run_from_command_line()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: PGD needs eps, step_size and steps >= 0")


def test_channels_last_and_bf16_autocast_train():
    module = RobustClassifierModule(
        classifier="digits:cnn", pretrained=False, channels_last=True, steps=2
    )
    trainer = quiet_trainer(max_steps=2, limit_val_batches=1, precision="bf16-mixed")
    datamodule = DigitsDataModule(batch_size=16)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 2
    results = trainer.validate(module, datamodule=datamodule)[0]
    assert 0 <= results["val/robust_acc_subset"] <= 1
    conv = next(m for m in module.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_robustness_library_checkpoints_load_as_weights(tmp_path):
    reference = build_classifier("torchvision:resnet18", num_classes=10)
    network = reference.net.state_dict()
    state = {f"module.model.{k}": v for k, v in network.items()}
    state |= {f"module.attacker.model.{k}": v for k, v in network.items()}
    state |= {"module.normalizer.new_mean": torch.zeros(3, 1, 1)}
    path = tmp_path / "cifar_l2_0_5.pt"
    torch.save({"model": state, "epoch": 150}, path)
    loaded = build_classifier("torchvision:resnet18", num_classes=10, weights=str(path))
    images = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(loaded(images), reference(images))


def test_cifar_resnets_load_robustness_library_cifar_checkpoints(tmp_path):
    reference = build_classifier("cifar:resnet18")
    assert reference.input_size == (32, 32) and reference.head == "fc"
    theirs = {
        k.replace(".downsample.", ".shortcut.").replace("fc.", "linear."): v
        for k, v in reference.net.state_dict().items()
    }
    state = {f"module.model.{k}": v for k, v in theirs.items()}
    state |= {f"module.attacker.model.{k}": v for k, v in theirs.items()}
    path = tmp_path / "cifar_linf_8.pt"
    torch.save({"model": state, "epoch": 150}, path)
    loaded = build_classifier("cifar:resnet18", weights=str(path))
    images = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(loaded(images), reference(images))
    assert loaded.penultimate(images).shape == (2, 512)
    with pytest.raises(InversionError, match="no downloadable weights"):
        build_classifier("cifar:resnet50", pretrained=True)
    with pytest.raises(InversionError, match="Unknown cifar model"):
        build_classifier("cifar:vgg16")
