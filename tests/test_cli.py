import re
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from inversion import build_classifier
from inversion.data.digits import load_digits_split
from model_inversion import train

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
    assert log_dir.parent == (tmp_path / "runs" / "classifier").resolve()  # the config's stem
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


# --- composable configs: fragments, names, the default run name ---------------------------
FRAGMENTS = sorted((REPO / "configs").glob("trainer/*.yaml")) + sorted(
    (REPO / "configs").glob("logging/*.yaml")
)
NEEDS_PACKAGE = {"wandb.yaml": "wandb", "mlflow.yaml": "mlflow"}
HARDWARE = {"accelerator", "devices", "strategy", "num_nodes", "precision"}


def test_fragments_set_hardware_or_logger_only():
    """Fragments compose with any method config: no callbacks, no schedule, nothing else."""
    names = {p.relative_to(REPO / "configs").as_posix() for p in FRAGMENTS}
    assert {"trainer/cpu.yaml", "trainer/gpu1_bf16.yaml", "trainer/gpu8_ddp_bf16.yaml"} <= names
    assert {"trainer/multinode.yaml", "logging/tensorboard.yaml", "logging/csv.yaml"} <= names
    for path in FRAGMENTS:
        data = yaml.safe_load(path.read_text())
        assert set(data) == {"trainer"}, path
        allowed = HARDWARE if path.parent.name == "trainer" else {"logger"}
        assert set(data["trainer"]) <= allowed, path
        assert re.search(rf"--config configs/{path.parent.name}/{path.name}", path.read_text())


def test_method_configs_leave_hardware_and_logging_to_fragments():
    for path in sorted((REPO / "configs").rglob("*.yaml")):
        if path.parent.name in ("trainer", "logging"):
            continue
        trainer = yaml.safe_load(path.read_text()).get("trainer") or {}
        assert not (HARDWARE | {"logger"}) & set(trainer), path


def print_config(args: list[str], capsys) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        train.main([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=lambda p: p.parent.name + "/" + p.name)
def test_each_fragment_composes_with_a_method_config(fragment, capsys):
    if fragment.name in NEEDS_PACKAGE:
        pytest.importorskip(NEEDS_PACKAGE[fragment.name])
    name = fragment.relative_to(REPO / "configs").as_posix()
    method = yaml.safe_load((REPO / "configs/digits/class_inversion_pii.yaml").read_text())
    config = print_config(
        ["fit", "--config", "digits/class_inversion_pii.yaml", "--config", name], capsys
    )
    trainer, own = config["trainer"], yaml.safe_load(fragment.read_text())["trainer"]
    for key, value in own.items():
        if key != "logger":
            assert trainer[key] == value, key
    assert [c["class_path"].rsplit(".", 1)[-1] for c in trainer["callbacks"]] == [
        c["class_path"].rsplit(".", 1)[-1] for c in method["trainer"]["callbacks"]
    ]
    assert trainer["max_epochs"] == method["trainer"]["max_epochs"]
    logger = trainer["logger"]
    if "logger" in own:
        assert logger["class_path"] == own["logger"]["class_path"]
    else:
        assert logger["class_path"].endswith("TensorBoardLogger")
    if "name" in logger["init_args"]:
        assert logger["init_args"]["name"] == "class_inversion_pii"


def test_a_later_logging_fragment_replaces_the_logger(capsys):
    config = print_config(
        [
            "fit",
            "--config",
            "digits/classifier.yaml",
            "--config",
            "logging/tensorboard.yaml",
            "--config",
            "logging/csv.yaml",
        ],
        capsys,
    )
    assert config["trainer"]["logger"]["class_path"].endswith("CSVLogger")
    assert config["trainer"]["logger"]["init_args"]["name"] == "classifier"


def test_a_config_or_flag_that_names_the_run_wins(tmp_path, capsys):
    own = tmp_path / "mine.yaml"
    own.write_text(
        "trainer:\n  logger:\n    class_path: lightning.pytorch.loggers.CSVLogger\n"
        "    init_args: {save_dir: logs, name: kept}\n"
    )
    config = print_config(
        ["fit", "--config", "digits/classifier.yaml", "--config", str(own)], capsys
    )
    init_args = config["trainer"]["logger"]["init_args"]
    assert (init_args["save_dir"], init_args["name"]) == ("logs", "kept")
    flag = print_config(
        ["fit", "--config", "digits/classifier.yaml", "--trainer.logger.init_args.name=flagged"],
        capsys,
    )
    assert flag["trainer"]["logger"]["init_args"]["name"] == "flagged"


def test_unnamed_loggers_get_the_run_name():
    from jsonargparse import Namespace

    from model_inversion.config_files import name_unnamed_loggers

    mlflow = Namespace(
        class_path="MLFlowLogger",
        init_args=Namespace(experiment_name="lightning_logs", run_name=None),
    )
    csv = Namespace(class_path="CSVLogger", init_args=Namespace(name="mine"))
    name_unnamed_loggers([mlflow, csv], "run")
    assert mlflow.init_args.experiment_name == "run" and mlflow.init_args.run_name is None
    assert csv.init_args.name == "mine"
    name_unnamed_loggers(False, "run")  # no logger: nothing to name


def test_configs_are_named_relative_to_the_shipped_folder(tmp_path, monkeypatch, capsys):
    from model_inversion.config_files import configs_folder, resolve_config, shipped_config_names

    monkeypatch.chdir(tmp_path)
    assert configs_folder() == REPO / "configs"
    assert "digits/classifier.yaml" in shipped_config_names()
    expected = str((REPO / "configs/digits/classifier.yaml").resolve())
    assert resolve_config("digits/classifier.yaml") == expected
    assert resolve_config("configs/digits/classifier.yaml") == expected
    # a file where the user points wins over the shipped config of the same name
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / "classifier.yaml").write_text("seed_everything: 3\n")
    assert resolve_config("digits/classifier.yaml") == "digits/classifier.yaml"
    assert resolve_config("seed_everything: 1\n") == "seed_everything: 1\n"  # YAML text


@pytest.mark.parametrize("name", ["digits/classifer.yaml", "../pyproject.yaml", "/nowhere/x.yaml"])
def test_an_unknown_config_name_is_one_clear_error(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py", "fit", "--config", name])
    with pytest.raises(SystemExit) as exit_info:
        train.run_from_command_line()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: Config '{name}' not found") and "\n" not in err
