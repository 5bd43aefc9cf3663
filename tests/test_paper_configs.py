"""Every paper config (``configs/paper/*.yaml``), run small and offline.

Each family shrinks its configs the same way (random init instead of pretrained weights,
32 px, a step or two, tiny stand-in data): the ``FAMILIES`` table, keyed by the family
prefix of the config's file name, holds those overrides and the checks of a small run.
A config whose family is not in the table fails ``test_every_paper_config_is_covered``.
The paper's reference settings (attack strengths, learning rates, layers...) are checked
on the configs as shipped, before any shrinking.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from fake_data import write_fake_cifar10, write_imagenet_folder

from inversion.data.synthesised import write_manifest, write_png
from model_inversion import train

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "configs" / "paper"
PAPER_CONFIGS = sorted(PAPER.glob("*.yaml"))
FAST = ("--trainer.fast_dev_run=true", "--trainer.precision=32-true")
Config = dict[str, Any]


def load(config: Path) -> Config:
    return yaml.safe_load(config.read_text())


def model_args(data: Config) -> Config:
    return data["model"]["init_args"]


def data_args(data: Config) -> Config:
    return data["data"]["init_args"]


def without_image_metrics(data: Config) -> None:
    """Drop the metric callback: it needs real Inception weights and real data."""
    callbacks = data["trainer"].get("callbacks") or []
    data["trainer"]["callbacks"] = [c for c in callbacks if "ImageMetrics" not in c["class_path"]]


# --- per-family shrinking ------------------------------------------------------------------
def small_class_inversion(data: Config, tmp_path: Path) -> None:
    """Random init, 32 px, two targets, one step per stage (no fast_dev_run: see FAMILIES)."""
    model = model_args(data)
    model.update(pretrained=False, image_size=32)
    if "input_size" in model:
        model["input_size"] = 32
    model["options"] = {**(model.get("options") or {}), "ensemble": 2, "steps_per_stage": 1}
    if model["recipe"] == "deepinversion":
        model["options"].update(ensemble=1, low_res_steps=1, warmup_steps=0)
    data_args(data).update(classes=[0, 1], batch_size=2)
    without_image_metrics(data)


def small_robust_prior(data: Config, tmp_path: Path) -> None:
    """Random weights, fake CIFAR-10 or ImageNet folders, 32 px, two attack/tool steps."""
    model = model_args(data)
    model.pop("weights", None)
    model["pretrained"] = False
    if data["model"]["class_path"] == "RobustClassifierModule":
        model.update(steps=2, eval_steps=2)
    else:
        model.update(steps=2, progress=False)
    init = data_args(data)
    if data["data"]["class_path"] == "Cifar10DataModule":
        init["root"] = str(write_fake_cifar10(tmp_path / "cifar", per_file=4))
    else:
        init.update(root=str(write_imagenet_folder(tmp_path / "imagenet")), image_size=32)
    init.update(batch_size=2, num_workers=0)
    if data["model"]["class_path"] == "RobustClassifierModule" and "imagenet" in str(init):
        # a random ImageNet ResNet-50 at 32 px has 1x1 maps in its last stage: batch norm
        # over 2 such images divides by a near-zero variance and one training step sends
        # the weights to 1e5+ and the validation loss to NaN (the non-finite check says
        # so); 64 px and 4 images keep the smoke test a smoke test
        init.update(image_size=64, batch_size=4)
    without_image_metrics(data)


def stamped_folder(root: Path, count: int = 6) -> Path:
    """A small folder stamped as written by class inversion (random RGB images)."""
    files = {}
    for i in range(count):
        image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(i))
        files[f"{i % 2}/{i}.png"] = write_png(image, root / f"{i % 2}" / f"{i}.png")
    write_manifest(root, files, {"module": "ClassInversion"})
    return root


def small_layerwise(data: Config, tmp_path: Path) -> None:
    """Random init, 32 px, narrow blocks, digits for evaluation, a stamped stand-in folder."""
    model, init = model_args(data), data_args(data)
    model.update(pretrained=False, image_size=32, block={**model["block"], "max_width": 16})
    init.update(image_size=32, batch_size=2, evaluate_on="digits:test", num_workers=0)
    if init["source"] not in ("gaussian", "uniform", "smooth"):
        init["source"] = str(stamped_folder(tmp_path / "synthesised"))


def small_conditioned_generator(data: Config, tmp_path: Path) -> None:
    """Random init, a tiny generator at 32 px (the 224 px one is checked in its own test)."""
    model_args(data).update(
        pretrained=False, weights=None, latent_dim=8, width=2, max_width=8, image_size=32
    )
    data_args(data).update(batch_size=4, val_per_class=1)
    without_image_metrics(data)


def small_dominant_patterns(data: Config, tmp_path: Path) -> None:
    """Random init, 32 px, a tiny ImageNet-layout folder as proxy and validation data."""
    model_args(data).update(pretrained=False, image_size=32)
    data_args(data).update(
        root=str(write_imagenet_folder(tmp_path / "images")),
        image_size=32,
        batch_size=2,
        num_workers=0,
    )


# --- per-family checks of the small run ----------------------------------------------------
def check_class_inversion(cli: Any) -> None:
    assert cli.model.times_produced.tolist() == [1, 1]
    assert cli.model.produced.shape == (2, 3, 32, 32)


def check_one_step(cli: Any) -> None:
    assert cli.trainer.state.finished
    if cli.subcommand == "fit":
        assert cli.trainer.global_step == 1


def check_layerwise(cli: Any) -> None:
    check_one_step(cli)
    shapes = [(64, 16, 16), (256, 8, 8), (512, 4, 4), (1024, 2, 2), (2048, 1, 1)]
    assert cli.model.blocks.shapes[1:] == shapes


def check_dominant_patterns(cli: Any) -> None:
    check_one_step(cli)
    assert cli.model.pattern.pattern.shape == (1, 3, 32, 32)
    assert 0 <= float(cli.trainer.callback_metrics["val/fooling_rate"]) <= 1


@dataclass(frozen=True)
class Family:
    """How the paper configs of one family are shrunk and what their small run shows."""

    model_classes: frozenset[str]
    shrink: Callable[[Config, Path], None]
    check: Callable[[Any], None]
    args: tuple[str, ...] = FAST


FAMILIES = {
    # class inversion's whole schedule is its few steps: no fast_dev_run, and it keeps
    # the paper's precision
    "class_inversion": Family(
        frozenset({"ClassInversion"}), small_class_inversion, check_class_inversion, ()
    ),
    # the robust prior keeps the paper's precision, as its earlier smoke test did
    "robust_prior": Family(
        frozenset({"RobustClassifierModule", "RepresentationTools"}),
        small_robust_prior,
        check_one_step,
        ("--trainer.fast_dev_run=true",),
    ),
    "layerwise": Family(frozenset({"LayerwiseInversion"}), small_layerwise, check_layerwise),
    "conditioned_generator": Family(
        frozenset({"ConditionedGeneratorInversion"}), small_conditioned_generator, check_one_step
    ),
    "dominant_patterns": Family(
        frozenset({"DominantPatterns"}), small_dominant_patterns, check_dominant_patterns
    ),
}


def family_of(config: Path) -> str | None:
    """The family prefix of a paper config's file name, or None if no family claims it."""
    matches = [f for f in FAMILIES if config.stem.startswith(f"{f}_")]
    return max(matches, key=len) if matches else None


def configs_of(family: str) -> list[Path]:
    return [p for p in PAPER_CONFIGS if family_of(p) == family]


def documented_command(config: Path) -> str:
    """The subcommand of the config's own ``python train.py SUB --config configs/paper/...``."""
    own = re.escape(f"configs/paper/{config.name}")
    match = re.search(rf"python train\.py (\w+) --config {own}\b", config.read_text())
    assert match, f"{config} must document its command in a comment"
    return match.group(1)


# --- coverage -------------------------------------------------------------------------------
def test_every_paper_config_is_covered():
    assert PAPER_CONFIGS, "configs/paper holds no YAML file"
    uncovered = [p.name for p in PAPER_CONFIGS if family_of(p) is None]
    assert not uncovered, (
        f"paper configs of no family in tests/test_paper_configs.py FAMILIES: {uncovered}; "
        "add their family (how to shrink its configs and what to check)"
    )
    for config in PAPER_CONFIGS:
        family = FAMILIES[family_of(config)]  # type: ignore[index]
        model_class = load(config)["model"]["class_path"]
        assert model_class in family.model_classes, (config.name, model_class)


def test_every_family_has_its_paper_configs():
    counts = {family: len(configs_of(family)) for family in FAMILIES}
    assert counts["class_inversion"] >= 6
    assert counts["conditioned_generator"] >= 2
    assert counts["layerwise"] >= 2


# --- the paper's reference settings ----------------------------------------------------------
def test_robust_prior_reference_settings():
    names = {p.stem for p in configs_of("robust_prior")}
    assert {
        "robust_prior_training_cifar10_l2_resnet50",
        "robust_prior_training_cifar10_linf_resnet50",
        "robust_prior_training_imagenet_l2_resnet50",
        "robust_prior_inversion_imagenet_l2_3",
    } <= names
    attack = model_args(load(PAPER / "robust_prior_training_imagenet_l2_resnet50.yaml"))
    assert (attack["norm"], attack["eps"], attack["step_size"], attack["steps"]) == (
        "l2",
        3.0,
        0.5,
        7,
    )


def test_dominant_patterns_reference_settings():
    configs = configs_of("dominant_patterns")
    assert {p.stem.removeprefix("dominant_patterns_") for p in configs} == {
        "vgg16",
        "vgg19",
        "resnet50",
    }
    for config in configs:
        data = load(config)
        model = model_args(data)
        assert model["eps"] == pytest.approx(10 / 255) and model["lr"] == 0.01
        assert data_args(data)["batch_size"] == 32 and data["trainer"]["max_epochs"] == 10


def names_weights(spec: str) -> bool:
    """Whether a timm/torchvision spec names its weights (a tag, a version, an hf-hub repo)."""
    kind, _, name = spec.partition(":")
    return kind in ("timm", "torchvision") and ("." in name or name.startswith("hf-hub:"))


def header(config: Path) -> str:
    """The comment lines before the first setting."""
    lines = config.read_text().splitlines()
    return "\n".join(
        line for line in lines[: next(i for i, ln in enumerate(lines) if not ln.startswith("#"))]
    )


def test_class_inversion_reference_models():
    """The papers' models with their weights pinned; verifiers that name (so load) weights."""
    for config in configs_of("class_inversion"):
        data = load(config)
        model = model_args(data)
        assert names_weights(model["classifier"]), (config.name, model["classifier"])
        assert "Reported" in header(config), config.name
        for callback in data["trainer"]["callbacks"]:
            for verifier in (callback.get("init_args") or {}).get("verifiers") or []:
                assert names_weights(verifier), (config.name, verifier)
    deepinversion = model_args(load(PAPER / "class_inversion_deepinversion_resnet50.yaml"))
    assert deepinversion["classifier"] in (
        "torchvision:resnet50.IMAGENET1K_V1",
        "timm:resnet50.tv_in1k",
    )
    vit = model_args(load(PAPER / "class_inversion_pii_vit_base_patch16_384.yaml"))
    assert vit["classifier"].startswith("timm:vit_base_patch16_384.")
    assert vit["input_size"] == vit["image_size"] == 384 and vit["options"]["ensemble"] == 6
    deit = model_args(load(PAPER / "class_inversion_pii_deit_base_patch16_224.yaml"))
    assert deit["classifier"].startswith("timm:deit_base_patch16_224.")
    assert deit["options"]["ensemble"] == 11


def test_imagenet_folders_use_the_model_eval_transform():
    """Every paper config that reads an ImageNet folder reads it as its model's eval does."""
    for config in PAPER_CONFIGS:
        data = load(config)
        if data["data"]["class_path"] != "ImageFolderDataModule":
            continue
        spec = data_args(data).get("eval_transform")
        assert spec and names_weights(spec), config.name
        classifier = model_args(data)["classifier"]
        if names_weights(classifier):
            assert spec == classifier, config.name
    for arch in ("resnet50", "vgg16", "vgg19"):
        data = load(PAPER / f"dominant_patterns_{arch}.yaml")
        assert model_args(data)["classifier"] == f"torchvision:{arch}.IMAGENET1K_V1"


def test_layerwise_reference_settings():
    for config in configs_of("layerwise"):
        data = load(config)
        model = model_args(data)
        assert model["classifier"] == "timm:resnet50"
        assert model["layers"] == ["act1", "layer1", "layer2", "layer3", "layer4"]
        assert "configs/trainer/gpu8_ddp_bf16.yaml" in header(config)  # 32-true here: CPU


def test_paper_configs_leave_hardware_and_logging_to_fragments():
    """Each documents the trainer fragment it runs with; none sets devices or a logger."""
    for config in PAPER_CONFIGS:
        trainer = load(config)["trainer"]
        hardware = {"accelerator", "devices", "strategy", "num_nodes", "precision", "logger"}
        assert not hardware & set(trainer), (config.name, hardware & set(trainer))
        fragments = re.findall(r"--config (configs/trainer/\S+\.yaml)", header(config))
        assert fragments, f"{config.name} names no trainer fragment in its header"
        for fragment in fragments:
            assert (REPO / fragment).is_file(), (config.name, fragment)


# --- small runs -----------------------------------------------------------------------------
@pytest.mark.parametrize("config", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_paper_config_runs_at_a_small_size(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py"])
    family = FAMILIES[family_of(config)]  # type: ignore[index]
    command = documented_command(config)
    data = load(config)
    family.shrink(data, tmp_path)
    small = tmp_path / config.name
    small.write_text(yaml.safe_dump(data))
    cli = train.main(
        [
            command,
            "--config",
            str(small),
            *family.args,
            "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false",
        ]
    )
    family.check(cli)


def test_paper_config_with_trainer_and_logging_fragments(tmp_path, monkeypatch):
    """A paper config run small with the hardware and the logger swapped in, one flag each.

    The fragments are named as shipped configs (relative to the configs folder); the
    method's own callbacks and settings stay, the logger is the fragment's, named after
    the method config.
    """
    from lightning.pytorch.loggers import CSVLogger

    from model_inversion.callbacks import ImageGrid

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py"])
    config = PAPER / "dominant_patterns_resnet50.yaml"
    data = load(config)
    FAMILIES["dominant_patterns"].shrink(data, tmp_path)
    small = tmp_path / config.name
    small.write_text(yaml.safe_dump(data))
    cli = train.main(
        [
            "fit",
            "--config",
            str(small),
            "--config",
            "trainer/cpu.yaml",
            "--config",
            "logging/csv.yaml",
            # fast_dev_run would swap the logger for a dummy: one epoch of the tiny folder
            "--trainer.max_epochs=1",
            "--trainer.check_val_every_n_epoch=1",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert cli.trainer.state.finished and cli.model.pattern.pattern.shape == (1, 3, 32, 32)
    trainer = cli.trainer
    assert trainer.accelerator.__class__.__name__ == "CPUAccelerator"
    assert trainer.precision == "32-true" and trainer.num_devices == 1
    assert isinstance(trainer.logger, CSVLogger) and len(trainer.loggers) == 1
    assert trainer.logger.name == "dominant_patterns_resnet50"
    assert any(isinstance(c, ImageGrid) for c in trainer.callbacks)  # the method's callbacks
    log_dir = Path(trainer.logger.log_dir).resolve()
    assert log_dir.is_relative_to((tmp_path / "runs" / "dominant_patterns_resnet50").resolve())
    assert "val/fooling_rate" in (log_dir / "metrics.csv").read_text().splitlines()[0]
