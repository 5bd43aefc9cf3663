"""The distribution as a user installs it: a wheel, not editable, beside other packages.

The wheel is built from a copy of the sources (nothing is written into the checkout) and
installed into a fresh virtual environment that sees the system's torch and Lightning and
also holds a package named ``evaluate`` (as Hugging Face's does in most ML environments).
The console scripts run from a folder outside the checkout, with configs named as the
installed package ships them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel and a fresh venv (about a minute)

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "configs", "inversion", "model_inversion")
SCRIPTS = ("inversion-train", "inversion-evaluate", "inversion-generate")


def run(command: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (not editable) and a fake ``evaluate``."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    wheels = root / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    run([*pip_wheel, str(source), "-w", str(wheels), "-q"], cwd=root)
    (wheel,) = wheels.glob("model_inversion-*.whl")
    env = root / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", str(env)], cwd=root)
    python = env / "bin" / "python"
    # --ignore-installed: the system may hold this distribution (an editable checkout)
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed"]
    run([*install, str(wheel)], cwd=root)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(run([str(python), "-c", where], cwd=root).stdout.strip())
    (site / "evaluate").mkdir()
    (site / "evaluate" / "__init__.py").write_text('"""Not this project\'s."""\nFAKE = True\n')
    return env


@pytest.fixture()
def elsewhere(tmp_path) -> Path:
    """A working directory outside the checkout, holding no configs."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_installed_modules_are_the_wheel_and_evaluate_is_not_ours(venv, elsewhere):
    python = str(venv / "bin" / "python")
    probe = (
        "import evaluate, model_inversion, model_inversion.evaluate as ours\n"
        "from model_inversion.config_files import configs_folder\n"
        "print(evaluate.FAKE, model_inversion.__file__, configs_folder())\n"
    )
    fake, package, configs = run([python, "-c", probe], cwd=elsewhere).stdout.split()
    assert fake == "True"
    assert Path(package).is_relative_to(venv) and Path(configs).is_relative_to(venv)
    assert (Path(configs) / "digits" / "classifier.yaml").is_file()
    assert (Path(configs) / "trainer" / "gpu8_ddp_bf16.yaml").is_file()
    site = Path(package).parents[1]
    generic_names = ("train.py", "evaluate.py", "generate.py", "configs", "callbacks")
    for generic in (*generic_names, "datamodules", "lightning_modules"):
        assert not (site / generic).exists(), generic


@pytest.mark.parametrize("script", SCRIPTS)
def test_console_script_help(venv, elsewhere, script):
    result = run([str(venv / "bin" / script), "--help"], cwd=elsewhere)
    expected = {"inversion-train": "fit", "inversion-evaluate": "folder"}.get(script, "--ckpt")
    assert result.stdout.startswith("usage:") and expected in result.stdout


def test_digits_config_named_through_the_installed_configs(venv, elsewhere):
    train = str(venv / "bin" / "inversion-train")
    printed = run(
        [train, "fit", "--config", "digits/classifier.yaml", "--print_config"], cwd=elsewhere
    )
    assert "class_path: model_inversion.lightning_modules.ClassifierModule" in printed.stdout
    assert "name: classifier" in printed.stdout  # the run is named after the config
    fast = [train, "fit", "--config", "digits/classifier.yaml", "--config", "trainer/cpu.yaml"]
    run(
        [*fast, "--trainer.fast_dev_run=true", "--trainer.enable_progress_bar=false"], cwd=elsewhere
    )
    assert not list(elsewhere.glob("*.yaml"))  # nothing copied here; configs read in place
