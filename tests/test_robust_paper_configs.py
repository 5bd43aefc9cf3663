"""The robust-prior paper configs, smoke-tested at a small size (random init, 32 px, fake data)."""

from pathlib import Path

import pytest
import yaml
from fake_data import write_fake_cifar10, write_imagenet_folder

import train

REPO = Path(__file__).resolve().parents[1]
FAMILY = ("RobustClassifierModule", "RepresentationTools")
CONFIGS = [
    p
    for p in sorted((REPO / "configs" / "paper").glob("*.yaml"))
    if yaml.safe_load(p.read_text())["model"]["class_path"] in FAMILY
]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def test_the_reference_settings_are_there():
    names = {p.stem for p in CONFIGS}
    assert {
        "robust_prior_training_cifar10_l2_resnet50",
        "robust_prior_training_cifar10_linf_resnet50",
        "robust_prior_training_imagenet_l2_resnet50",
        "robust_prior_inversion_imagenet_l2_3",
    } <= names
    imagenet_config = REPO / "configs/paper/robust_prior_training_imagenet_l2_resnet50.yaml"
    imagenet = yaml.safe_load(imagenet_config.read_text())
    attack = imagenet["model"]["init_args"]
    assert (attack["norm"], attack["eps"], attack["step_size"], attack["steps"]) == (
        "l2",
        3.0,
        0.5,
        7,
    )


def small_version(config: Path, tmp_path: Path) -> tuple[str, Path]:
    """Same modules and options, but random weights, fake data, 32 px and a couple of steps."""
    text = config.read_text()
    command = text.split("python train.py ")[1].split()[0]
    data = yaml.safe_load(text)
    model = data["model"]["init_args"]
    model.pop("weights", None)
    model["pretrained"] = False
    if data["model"]["class_path"] == "RobustClassifierModule":
        model.update(steps=2, eval_steps=2)
    else:
        model.update(steps=2, progress=False)
    init = data["data"]["init_args"]
    if data["data"]["class_path"] == "Cifar10DataModule":
        init["root"] = str(write_fake_cifar10(tmp_path / "cifar", per_file=4))
    else:
        init["root"] = str(write_imagenet_folder(tmp_path / "imagenet"))
        init["image_size"] = 32
    init.update(batch_size=2, num_workers=0)
    callbacks = data["trainer"].get("callbacks") or []
    data["trainer"]["callbacks"] = [c for c in callbacks if "ImageMetrics" not in c["class_path"]]
    path = tmp_path / config.name
    path.write_text(yaml.safe_dump(data))
    return command, path


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_paper_config_runs_at_a_small_size(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command, small = small_version(config, tmp_path)
    cli = train.main(
        [
            command,
            "--config",
            str(small),
            "--trainer.fast_dev_run=true",
            "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert cli.trainer.state.finished
    if command == "fit":
        assert cli.trainer.global_step == 1
