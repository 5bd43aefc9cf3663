import os
import subprocess
import sys
import textwrap

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from trainers import quiet_trainer

from inversion import InversionError, build_classifier
from inversion.layerwise import (
    BlockOptions,
    InverterStack,
    LossWeights,
    Schedule,
    blockwise_loss,
    export_inverter,
    load_exported_inverter,
)
from inversion.models.split import default_layers, split_classifier
from model_inversion.datamodules import DigitsDataModule, SyntheticImagesDataModule
from model_inversion.lightning_modules import LayerwiseInversion

TINY = {"blockwise_steps": 2, "resync_steps": 2, "export_path": None}


def trainer(tmp_path, **kwargs) -> pl.Trainer:
    return quiet_trainer(default_root_dir=tmp_path, **{"limit_val_batches": 0, **kwargs})


@pytest.mark.parametrize("spec", ["digits:cnn", "digits:resnet", "digits:vit", "digits:mlp"])
def test_blocks_reproduce_the_classifier_and_invert_to_images(spec):
    model = build_classifier(spec).freeze()
    layers = default_layers(model)
    blocks = split_classifier(model, layers, (1, 32, 32))
    images = torch.rand(3, 1, 32, 32)
    _, features = model.forward_with_features(images, layers)
    prefix = blocks.prefix(images)
    for k, layer in enumerate(layers, start=1):
        torch.testing.assert_close(prefix[k], features[layer], rtol=0, atol=0)
        assert tuple(prefix[k].shape[1:]) == blocks.shapes[k]
    stack = InverterStack(blocks.shapes).eval()
    chain = stack.chain(prefix[-1])
    assert [tuple(h.shape[1:]) for h in chain] == blocks.shapes
    assert 0 <= chain[0].min() and chain[0].max() <= 1
    for k in range(1, len(layers) + 1):  # every truncation inverts its own depth
        assert stack(prefix[k], k).shape == images.shape


def test_prefix_stops_at_the_requested_depth():
    model = build_classifier("digits:resnet").freeze()
    blocks = split_classifier(model, ["stem", "stage1", "stage2", "stage3"], (1, 32, 32))
    called = []
    handle = model.net.stage3.conv1.register_forward_hook(lambda *_: called.append(1))
    blocks.prefix(torch.rand(2, 1, 32, 32), depth=2)
    assert called == []
    blocks.prefix(torch.rand(2, 1, 32, 32))
    handle.remove()
    assert called == [1]


def test_a_classifier_already_moved_is_split_where_it_is():
    classifier = build_classifier("digits:cnn").freeze().double()  # like one on a GPU
    blocks = split_classifier(classifier, ["stage1", "penultimate"], (1, 32, 32))
    images = torch.rand(3, 1, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(blocks.prefix(images)[-1], classifier.penultimate(images))


def test_blocks_stay_frozen_and_are_not_trained():
    model = build_classifier("digits:cnn").freeze()
    blocks = split_classifier(model, ["stage1", "penultimate"], (1, 32, 32))
    blocks.train()
    assert not any(m.training for m in blocks.modules())
    assert not any(p.requires_grad for p in blocks.parameters())


def test_bad_cuts_are_clear_errors():
    model = build_classifier("digits:resnet").freeze()
    with pytest.raises(InversionError, match="Close names: stage2"):
        split_classifier(model, ["stage22"], (1, 32, 32))
    with pytest.raises(InversionError, match="not in forward order"):
        split_classifier(model, ["stage2", "stage1"], (1, 32, 32))
    with pytest.raises(InversionError, match="skip connection across the cut"):
        split_classifier(model, ["stage1.conv1", "stage2"], (1, 32, 32))
    with pytest.raises(InversionError, match="can only be the last"):
        split_classifier(model, ["penultimate", "stage3"], (1, 32, 32))


def test_the_deep_digits_resnet_splits_after_every_residual_block():
    model = build_classifier("digits:resnet-deep", pretrained=False).freeze()
    layers = ["stem", *(f"stage{s}.{b}" for s in (1, 2, 3) for b in range(3)), "penultimate"]
    blocks = split_classifier(model, layers, (1, 32, 32))
    assert len(blocks.shapes) == 12 and blocks.shapes[-2:] == [(96, 8, 8), (96,)]
    images = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(blocks(images), model.penultimate(images))
    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(m.kernel_size == (3, 3) for m in convs) == 19  # plus two 1x1 shortcuts


def test_timm_and_torchvision_resnets_split_at_the_stem_and_stages():
    timm_model = build_classifier("timm:resnet18", num_classes=10).freeze()
    layers = default_layers(timm_model)
    assert layers == ["act1", "layer1", "layer2", "layer3", "layer4", "penultimate"]
    blocks = split_classifier(timm_model, layers, (3, 32, 32))
    assert blocks.shapes[1:] == [
        (64, 16, 16),
        (64, 8, 8),
        (128, 4, 4),
        (256, 2, 2),
        (512, 1, 1),
        (512,),
    ]
    images = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(blocks(images), timm_model.penultimate(images))
    tv_model = build_classifier("torchvision:resnet18", num_classes=10).freeze()
    tv_blocks = split_classifier(tv_model, ["relu", "layer1", "layer4", "penultimate"], (3, 32, 32))
    torch.testing.assert_close(tv_blocks(images), tv_model.penultimate(images))


def test_block_options_and_loss_weights_are_checked():
    assert BlockOptions.from_dict({"norm": "group"}).norm == "group"
    with pytest.raises(InversionError, match="valid ones"):
        BlockOptions.from_dict({"normalisation": "group"})
    with pytest.raises(InversionError, match="choose one of"):
        BlockOptions(norm="layer")
    with pytest.raises(InversionError, match="valid ones"):
        LossWeights.from_dict({"cycles": 1.0})


def test_schedule_walks_blocks_then_resync():
    schedule = Schedule(3, blockwise_steps=4, resync_steps=5)
    assert schedule.total == 17
    phases = [schedule.at(s) for s in range(schedule.total)]
    assert [p.block for p in phases[:12]] == [1] * 4 + [2] * 4 + [3] * 4
    assert {p.name for p in phases[12:]} == {"resync"} and phases[12].optimizer == 3
    assert phases[4].step == 0 and phases[4].lr == schedule.lr  # each block restarts the decay
    assert phases[16].lr < phases[12].lr == schedule.resync_lr
    naive = Schedule(3, method="naive", blockwise_steps=4, resync_steps=5)
    assert naive.total == 17 and naive.at(16).name == "naive"
    with pytest.raises(InversionError, match="choose one of"):
        Schedule(3, method="greedy")


def test_blockwise_training_lowers_both_losses():
    torch.manual_seed(0)
    model = build_classifier("digits:cnn").freeze()
    blocks = split_classifier(model, ["stem"], (1, 16, 16))
    stack = InverterStack(blocks.shapes)
    optimizer = torch.optim.Adam(stack.parameters(), lr=3e-3)
    images = torch.rand(8, 1, 16, 16)
    first = None
    for _ in range(20):
        loss, parts = blockwise_loss(blocks, stack, 1, images, LossWeights())
        first = first or {k: float(v) for k, v in parts.items()}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(parts["reconstruction"]) < 0.5 * first["reconstruction"]
    assert float(parts["cycle"]) < 0.5 * first["cycle"]


ISOLATED_LOAD = textwrap.dedent(
    """
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"inversion", "model_inversion", "lightning", "train"}:
                raise ImportError("the project must not be needed: " + name)
    sys.meta_path.insert(0, Block())
    sys.path = [p for p in sys.path if p not in ("", ".") and "wt-" not in p]
    import torch
    extra = {"inverter.json": ""}
    inverter = torch.export.load(sys.argv[1], extra_files=extra).module()
    features = torch.load(sys.argv[2], weights_only=True)
    torch.save(inverter(features), sys.argv[3])
    print(extra["inverter.json"])
    """
)


def test_exported_inverter_runs_without_the_project(tmp_path):
    model = build_classifier("digits:cnn").freeze()
    blocks = split_classifier(model, ["stem", "stage1", "stage2"], (1, 32, 32))
    stack = InverterStack(blocks.shapes).eval()
    path = export_inverter(stack, 2, tmp_path / "inv.pt2", {"layer": "stage1"})
    assert stack.training is False and next(stack.parameters()).device.type == "cpu"
    features = blocks(torch.rand(5, 1, 32, 32), depth=2)
    torch.save(features, tmp_path / "features.pt")
    script = tmp_path / "load.py"
    script.write_text(ISOLATED_LOAD)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            str(path),
            str(tmp_path / "features.pt"),
            str(tmp_path / "out.pt"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert '"layer": "stage1"' in result.stdout and '"input_shape": [32, 16, 16]' in result.stdout
    with torch.no_grad():
        expected = stack(features, 2)
    torch.testing.assert_close(torch.load(tmp_path / "out.pt", weights_only=True), expected)
    module, meta = load_exported_inverter(path)  # the safe loader gives the same module
    with torch.no_grad():
        torch.testing.assert_close(module(features), expected)
    assert meta["layer"] == "stage1"


def small_data(**kwargs) -> SyntheticImagesDataModule:
    return SyntheticImagesDataModule(**{"source": "smooth", "batch_size": 4, **kwargs})


def test_module_trains_on_noise_and_never_saves_the_classifier(tmp_path):
    module = LayerwiseInversion(classifier="digits:cnn", layers=["stem", "stage1"], **TINY)
    fit = trainer(tmp_path)
    fit.fit(module, datamodule=small_data())
    assert fit.global_step == module.schedule.total == 6
    keys = module.state_dict().keys()
    assert keys and all(k.startswith("inverter.") for k in keys)


@pytest.mark.parametrize(
    "real",
    [
        lambda: DigitsDataModule(batch_size=4),
        lambda: SyntheticImagesDataModule(source="smooth", evaluate_on="digits:train"),
    ],
    ids=["digits", "evaluate_on"],
)
def test_real_images_never_train_and_may_evaluate(tmp_path, real):
    module = LayerwiseInversion(classifier="digits:cnn", layers=["stem"], **TINY)
    data = real()
    if isinstance(data, DigitsDataModule):
        with pytest.raises(InversionError, match="zero-shot: it trains only on synthetic"):
            trainer(tmp_path).fit(module, datamodule=data)
        assert module.global_step == 0
    else:  # real images reach validation and test only
        fit = trainer(tmp_path, limit_val_batches=1)
        fit.fit(module, datamodule=data)
        assert fit.global_step == 4
    results = trainer(tmp_path, limit_test_batches=2).test(module, datamodule=DigitsDataModule())
    assert 0 < results[0]["test/psnr_stem"] < 60


def test_layers_inside_a_stage_name_their_metrics(tmp_path):
    # resync_steps 0: a blockwise stack, trained for every depth (so every depth is logged)
    module = LayerwiseInversion(
        classifier="digits:resnet-deep",
        pretrained=False,
        layers=["stem", "stage1.0"],
        **{**TINY, "resync_steps": 0},
    )
    results = trainer(tmp_path, limit_test_batches=1).test(module, datamodule=DigitsDataModule())
    assert {"test/psnr_stem", "test/psnr_stage1_0", "test/agree_stage1_0"} <= set(results[0])


def test_schedule_names_the_depths_it_trains_for():
    assert Schedule(3, blockwise_steps=4, resync_steps=0).trained_depths == (1, 2, 3)
    assert Schedule(3, blockwise_steps=4, resync_steps=5).trained_depths == (3,)
    assert Schedule(3, blockwise_steps=0, resync_steps=5).trained_depths == (3,)
    assert Schedule(3, method="naive", naive_steps=5).trained_depths == (3,)


def _depth_keys(results: dict, stage: str) -> set[str]:
    return {k for k in results if k.startswith((f"{stage}/psnr_", f"{stage}/agree_"))}


def _expected_keys(stage: str, layers: list[str]) -> set[str]:
    return {f"{stage}/{metric}_{layer}" for layer in layers for metric in ("psnr", "agree")}


@pytest.mark.parametrize(
    ("method", "resync_steps", "logged"),
    [
        ("naive", 2, ["stage1"]),  # one decoder, trained from stage1 only
        ("layerwise", 2, ["stage1"]),  # the re-sync trains the stack for stage1 only
        ("layerwise", 0, ["stem", "stage1"]),  # blockwise: block 1 is trained for the stem
    ],
)
def test_a_run_logs_per_depth_numbers_only_for_the_depths_it_trained(
    tmp_path, method, resync_steps, logged
):
    options = {**TINY, "resync_steps": resync_steps}
    module = LayerwiseInversion(
        classifier="digits:cnn", layers=["stem", "stage1"], method=method, **options
    )
    fit = trainer(tmp_path, limit_val_batches=1)
    fit.fit(module, datamodule=small_data(evaluate_on="digits:val"))
    assert _depth_keys(fit.callback_metrics, "val") == _expected_keys("val", logged)
    results = trainer(tmp_path, limit_test_batches=1).test(
        module, datamodule=DigitsDataModule(batch_size=4)
    )
    assert _depth_keys(results[0], "test") == _expected_keys("test", logged)
    # and the depth grid gets the same depths
    with torch.inference_mode():  # as in Lightning's evaluation loops
        assert list(module._evaluate((torch.rand(2, 1, 32, 32),))["depths"]) == logged


def test_training_on_a_real_loader_is_refused(tmp_path):
    images = torch.rand(8, 1, 32, 32)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(8)))
    module = LayerwiseInversion(classifier="digits:cnn", layers=["stem"], **TINY)
    with pytest.raises(InversionError, match="TensorDataset"):
        trainer(tmp_path).fit(module, train_dataloaders=loader)


def fit_to(tmp_path, name, max_steps, ckpt_path=None, callbacks=()):
    torch.manual_seed(0)
    module = LayerwiseInversion(
        classifier="digits:cnn",
        layers=["stem", "stage1"],
        blockwise_steps=3,
        resync_steps=3,
        export_path=None,
    )
    fit = trainer(
        tmp_path / name,
        max_steps=max_steps,
        callbacks=list(callbacks),
        enable_checkpointing=bool(callbacks),
    )
    fit.fit(module, datamodule=small_data(), ckpt_path=ckpt_path)
    return module, fit


def test_resuming_either_phase_is_exact(tmp_path):
    saver = ModelCheckpoint(tmp_path / "ckpts", every_n_train_steps=1, save_top_k=-1)
    full, _ = fit_to(tmp_path, "full", -1, callbacks=[saver])
    for stop in (4, 7):  # inside block 2 of the blockwise phase; inside the resync phase
        ckpt = tmp_path / "ckpts" / f"epoch=0-step={stop}.ckpt"
        assert torch.load(ckpt, weights_only=True)["global_step"] == stop
        resumed, fit = fit_to(tmp_path, f"resumed{stop}", -1, ckpt_path=str(ckpt))
        assert fit.global_step == full.schedule.total == 9
        for key, value in full.state_dict().items():
            torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
