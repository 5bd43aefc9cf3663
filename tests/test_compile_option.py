"""The ``compile`` option of the step-wise modules (``torch.compile`` of what runs every step).

Class inversion is checked with the real compiler (inductor): the images equal the eager
run's within float reassociation, and a compiled run stopped mid-way resumes to the
uninterrupted compiled run. Inductor takes tens of seconds per graph on a CPU, so the
other modules' wiring (which networks are compiled, hooks traced, dropout draws, the
option parsed from a config) is checked with the ``aot_eager`` backend: the same
capture by dynamo and AOTAutograd, without code generation, so their runs equal the
eager ones to the last bits but for reassociation in the traced backward.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo.utils
import yaml
from test_steps_per_batch import SaveAt, _Digits
from trainers import quiet_trainer

from inversion import build_classifier
from model_inversion import train
from model_inversion.compiling import compile_in_place
from model_inversion.datamodules import (
    ClassTargetsDataModule,
    LatentsDataModule,
    SyntheticImagesDataModule,
)
from model_inversion.lightning_modules import (
    ClassInversion,
    ConditionedGeneratorInversion,
    DominantPatterns,
    LayerwiseInversion,
)

# one stage (the classifier sees one image size), 6 steps per batch of targets
ONE_STAGE_PII = {"zoom_stages": 1, "steps_per_stage": 6, "ensemble": 2}


def _graphs() -> int:
    """Graphs dynamo has captured in this process so far."""
    return int(torch._dynamo.utils.counters["stats"]["unique_graphs"])


def _class_inversion(compile: bool, recipe: str = "pii", **options) -> ClassInversion:
    return ClassInversion(
        recipe=recipe, options={**ONE_STAGE_PII, **options}, seed=3, compile=compile
    )


def _targets() -> ClassTargetsDataModule:
    # two batches of two targets (one input shape): 12 steps
    return ClassTargetsDataModule(num_classes=10, classes=[0, 6, 9, 1], batch_size=2)


def test_compiled_class_inversion_equals_eager_and_resumes(tmp_path):
    eager = _class_inversion(False)
    quiet_trainer(devices=1).fit(eager, datamodule=_targets())
    before = _graphs()
    compiled = _class_inversion(True)
    trainer = quiet_trainer(devices=1, callbacks=[SaveAt(tmp_path, [9])])
    trainer.fit(compiled, datamodule=_targets())
    assert _graphs() > before  # the classifier did run compiled
    assert compiled.times_produced.tolist() == [1, 1, 1, 1]
    # Compiled kernels sum in another order (float reassociation: ~1e-7 relative on the
    # logits and gradients). Adam turns a gradient into a step of about lr (0.01) per
    # pixel whatever its size, so where a pixel's gradient is close to zero the rounding
    # can change its step: the gap grows with the steps (~1e-5 measured after these 6,
    # up to 1e-3 after 10). 1e-4 leaves room for other CPUs' kernels, while a graph that
    # drops or changes a term moves the images by 1e-2 and more.
    torch.testing.assert_close(compiled.produced, eager.produced, rtol=0, atol=1e-4)

    resumed = _class_inversion(True)  # stopped inside the second batch's schedule
    trainer = quiet_trainer(devices=1)
    trainer.fit(resumed, datamodule=_targets(), ckpt_path=tmp_path / "step=9.ckpt")
    assert trainer.global_step == 12
    # the same compiled kernels on the same inputs: the uninterrupted run exactly
    torch.testing.assert_close(resumed.produced, compiled.produced, rtol=0, atol=0)


@pytest.fixture
def aot_eager(monkeypatch):
    """``torch.compile`` with the ``aot_eager`` backend (no code generation)."""
    real_compile = torch.compile

    def compile_aot_eager(model, **kwargs):
        kwargs.pop("options", None)  # inductor's
        return real_compile(model, backend="aot_eager", **kwargs)

    monkeypatch.setattr(torch, "compile", compile_aot_eager)


def _close(got: torch.nn.Module, expected: torch.nn.Module) -> None:
    expected_state = expected.state_dict()
    assert got.state_dict().keys() == expected_state.keys()
    for key, value in got.state_dict().items():
        torch.testing.assert_close(value, expected_state[key], rtol=1e-5, atol=1e-6)


def test_hooks_added_after_a_compiled_call_are_honoured(aot_eager):
    # by default dynamo does not guard on hooks: a feature tap added after the first
    # compiled call would never run (no features), and a later one would fill an old dict
    classifier = build_classifier("digits:cnn").freeze()
    compile_in_place([classifier])
    images = torch.rand(3, 1, 32, 32)
    logits = classifier(images)
    for _ in range(2):
        tapped, features = classifier.forward_with_features(images, ["penultimate"])
        torch.testing.assert_close(tapped, logits)
        assert features["penultimate"].shape[0] == 3
    torch.testing.assert_close(classifier(images), logits)


def test_compiled_deepinversion_traces_the_batch_norm_hooks(aot_eager):
    # the inverter hooks every batch-norm layer after the classifier is compiled; hooks
    # that the compiled code ignored would drop the bn term and change the images
    options = {"low_res_steps": 0, "steps_per_stage": 4}
    eager = _class_inversion(False, "deepinversion", **options)
    quiet_trainer(devices=1).fit(eager, datamodule=_targets())
    compiled = _class_inversion(True, "deepinversion", **options)
    before = _graphs()
    quiet_trainer(devices=1).fit(compiled, datamodule=_targets())
    assert _graphs() > before
    torch.testing.assert_close(compiled.produced, eager.produced, rtol=0, atol=1e-5)


def test_compiled_dominant_patterns_equal_eager(aot_eager):
    def run(compile: bool) -> DominantPatterns:
        module = DominantPatterns(eps=10 / 255, layer="penultimate", compile=compile)
        quiet_trainer(max_epochs=1).fit(module, datamodule=_Digits())
        return module

    eager = run(False)
    before = _graphs()
    compiled = run(True)  # the penultimate features are read by a hook
    assert _graphs() > before
    _close(compiled, eager)


def test_compiled_conditioned_generator_equals_eager(aot_eager):
    def run(compile: bool) -> ConditionedGeneratorInversion:
        torch.manual_seed(0)  # the training dropout masks
        module = ConditionedGeneratorInversion(
            latent_dim=8, width=8, max_width=32, warmup_steps=2, compile=compile
        )
        data = LatentsDataModule(batch_size=10, batches_per_epoch=4, val_per_class=2)
        quiet_trainer(max_epochs=1, limit_val_batches=0).fit(module, datamodule=data)
        return module

    eager = run(False)
    before = _graphs()
    compiled = run(True)  # dropout draws as eager: the same masks
    assert _graphs() > before
    _close(compiled.generator, eager.generator)


def test_compiled_layerwise_equals_eager_and_exports(aot_eager, tmp_path):
    def run(compile: bool) -> LayerwiseInversion:
        torch.manual_seed(0)
        module = LayerwiseInversion(
            classifier="digits:cnn",
            layers=["stem", "stage1"],
            blockwise_steps=2,
            resync_steps=2,
            export_path=str(tmp_path / f"inverter-{compile}.pt2"),
            compile=compile,
        )
        data = SyntheticImagesDataModule(source="smooth", batch_size=4)
        quiet_trainer(limit_val_batches=0).fit(module, datamodule=data)
        return module

    eager = run(False)
    before = _graphs()
    compiled = run(True)
    assert _graphs() > before
    _close(compiled, eager)
    assert (tmp_path / "inverter-True.pt2").is_file()  # torch.export of compiled blocks


@pytest.mark.parametrize(
    "config",
    [
        "class_inversion_pii",
        "dominant_patterns",
        "conditioned_generator",
        "layerwise",
    ],
)
def test_compile_is_an_option_of_the_configs(config, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["train.py"])
    args = ["fit", "--config", f"digits/{config}.yaml", "--model.init_args.compile=true"]
    with pytest.raises(SystemExit) as exit_info:
        train.main([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["compile"] is True
