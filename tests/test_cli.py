import re
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from inversion import build_classifier
from inversion.data.digits import load_digits_split

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs" / "digits").rglob("*.yaml"))


# fast_dev_run cuts batches, not a module's inner optimisation: keep those short here; the
# representation tools use digits:cnn-robust, which trains for minutes on first use (the
# slow robust-prior checks use it), so their wiring is smoke-tested on digits:cnn
INNER_STEPS = {
    "RepresentationTools": ["--model.init_args.steps=3", "--model.init_args.classifier=digits:cnn"]
}


def fast_overrides(config: Path) -> list[str]:
    """Extra arguments that shorten a config's inner loops (by its model class)."""
    class_path = yaml.safe_load(config.read_text())["model"]["class_path"]
    return INNER_STEPS.get(class_path.rsplit(".", 1)[-1], [])


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def test_there_are_configs():
    assert REPO / "configs" / "digits" / "classifier.yaml" in CONFIGS


def documented_command(config: Path) -> str:
    """The subcommand of the config's header comment ``python train.py SUB --config PATH``."""
    match = re.search(r"python train\.py (\w+) --config (\S+)", config.read_text())
    assert match, f"{config} must document its command in a comment"
    assert (REPO / match.group(2)).resolve() == config.resolve()
    return match.group(1)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_every_config_runs_fast_dev_run(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = documented_command(config)
    cli = train.main(
        [
            command,
            "--config",
            str(config),
            "--trainer.fast_dev_run=true",
            "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false",
            *fast_overrides(config),
        ]
    )
    assert cli.trainer.state.finished
    if command == "fit":
        assert cli.trainer.global_step >= 1


def test_fit_writes_tensorboard_checkpoint_and_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = train.main(
        [
            "fit",
            "--config",
            str(REPO / "configs/digits/classifier.yaml"),
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=4",
            "--trainer.limit_val_batches=2",
            "--trainer.enable_progress_bar=false",
            "--trainer.log_every_n_steps=2",
        ]
    )
    log_dir = Path(cli.trainer.log_dir).resolve()
    assert log_dir.is_relative_to((tmp_path / "runs").resolve())
    assert (log_dir / "config.yaml").is_file()
    checkpoints = list((log_dir / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 1
    events = EventAccumulator(str(log_dir))
    events.Reload()
    assert {"val/acc", "val/loss", "train/loss_step"} <= set(events.Tags()["scalars"])

    # the checkpoint is a classifier spec, loaded with weights_only=True
    rebuilt = build_classifier(str(checkpoints[0]))
    images, _ = load_digits_split("val")
    cli.model.eval()
    torch.testing.assert_close(rebuilt(images[:8]), cli.model(images[:8]))

    # and the CLI resumes/validates from it
    val = train.main(
        [
            "validate",
            "--config",
            str(log_dir / "config.yaml"),
            "--ckpt_path",
            str(checkpoints[0]),
            "--trainer.enable_progress_bar=false",
            "--trainer.logger=false",
        ]
    )
    assert 0.0 <= float(val.trainer.callback_metrics["val/acc"]) <= 1.0


def test_cli_lists_modules_by_short_name(capsys):
    with pytest.raises(SystemExit):
        train.main(["fit", "--model.help", "ClassifierModule"])
    assert "--model.classifier CLASSIFIER" in capsys.readouterr().out


def test_bad_spec_in_config_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        "sys.argv",
        [
            "train.py",
            "fit",
            "--config",
            str(REPO / "configs/digits/classifier.yaml"),
            "--model.init_args.classifier=digits:resnett",
            "--trainer.fast_dev_run=true",
        ],
    )
    with pytest.raises(SystemExit) as exit_info:
        train.run_from_command_line()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: Unknown digits model 'resnett'. Did you mean: digits:resnet, digits:resnet-deep?"
    )


