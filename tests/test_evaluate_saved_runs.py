"""``evaluate.py run`` takes the config.yaml LightningCLI saves into a run's log folder."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from model_inversion import evaluate

REPO = Path(__file__).resolve().parents[1]


def test_evaluate_run_accepts_a_saved_run_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the config's logger writes to ./runs
    fit = [
        sys.executable,
        str(REPO / "train.py"),
        "fit",
        "--config",
        str(REPO / "configs/digits/classifier.yaml"),
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path / 'root'}",
    ]
    subprocess.run(fit, check=True, cwd=tmp_path, timeout=300)
    (saved,) = tmp_path.glob("runs/**/config.yaml")
    (ckpt,) = tmp_path.glob("runs/**/*.ckpt")
    assert "ckpt_path" in yaml.safe_load(saved.read_text())  # what made `run` refuse it
    out = tmp_path / "out"
    command = [
        sys.executable,
        str(REPO / "evaluate.py"),
        "run",
        "--config",
        str(saved),
        "--ckpt",
        str(ckpt),
        "--feature",
        "none",
        "--out",
        str(out),
        "--name",
        "saved",
    ]
    done = subprocess.run(command, cwd=tmp_path, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert isinstance(json.loads((out / "saved.json").read_text()), dict)
    assert (out / "results.md").read_text().splitlines()[-1].startswith("| saved |")


def test_evaluation_config_drops_only_subcommand_keys(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "seed_everything: 3\nmodel: {a: 1}\noptimizer: null\nlr_scheduler: null\n"
        "ckpt_path: null\nweights_only: null\n"
    )
    kept = yaml.safe_load(evaluate.evaluation_config(config))
    assert kept == {
        "seed_everything": 3,
        "model": {"a": 1},
        "optimizer": None,
        "lr_scheduler": None,
    }
    plain = tmp_path / "plain.yaml"
    plain.write_text("model: {a: 1}\n")
    assert evaluate.evaluation_config(plain) == str(plain)  # untouched: the file itself
