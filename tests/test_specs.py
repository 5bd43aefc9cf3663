import pickle
import urllib.error

import pytest
import torch
from safetensors.torch import save_file

from inversion import InversionError, build_classifier

X = torch.rand(2, 3, 32, 32)


@pytest.mark.parametrize(
    ("spec", "kwargs"),
    [
        ("timm:resnet18", {"num_classes": 7}),
        ("timm:vit_tiny_patch16_224", {"num_classes": 7, "input_size": 32}),
        ("timm:resmlp_12_224", {"num_classes": 7, "input_size": 32}),
        ("torchvision:resnet18", {"num_classes": 7}),
        ("torchvision:mobilenet_v3_small", {"num_classes": 7}),
    ],
)
def test_random_init_specs(spec, kwargs):
    model = build_classifier(spec, **kwargs)
    assert not model.training
    assert model.num_classes == 7 and model(X).shape == (2, 7)
    assert model.penultimate(X).shape[0] == 2
    if "input_size" in kwargs:
        assert model.fixed_size and model.input_size == (32, 32)
        assert model(torch.rand(1, 3, 48, 48)).shape == (1, 7)  # resized inside


@pytest.mark.parametrize("spec", ["timm:resnet18", "torchvision:resnet18", "digits:vit"])
@pytest.mark.parametrize("fmt", ["pt", "safetensors", "ddp-wrapped"])
def test_local_weights_file_round_trip(tmp_path, spec, fmt):
    kwargs = (
        {"num_classes": 10, "pretrained": False}
        if spec.startswith("digits")
        else {"num_classes": 10}
    )
    torch.manual_seed(1)
    source = build_classifier(spec, **kwargs)
    state = source.net.state_dict()
    path = tmp_path / f"w.{'safetensors' if fmt == 'safetensors' else 'pt'}"
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif fmt == "ddp-wrapped":
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    else:
        torch.save(state, path)
    torch.manual_seed(2)
    loaded = build_classifier(spec, weights=str(path), **kwargs)
    torch.testing.assert_close(loaded(X), source(X))


def test_mismatched_weights_file(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(build_classifier("timm:resnet18", num_classes=10).net.state_dict(), path)
    with pytest.raises(InversionError, match="does not match"):
        build_classifier("timm:resnet34", num_classes=10, weights=str(path))
    with pytest.raises(InversionError, match="does not match"):  # fresh head, wrong backbone
        build_classifier("timm:resnet34", num_classes=5, weights=str(path))
    with pytest.raises(InversionError, match="num_classes"):
        build_classifier("torchvision:resnet18", num_classes=5, weights=str(path))


def test_timm_pretrained_tag_without_weights():
    model = build_classifier("timm:resnet50.tv_in1k", pretrained=False)
    assert model.name == "timm:resnet50.tv_in1k" and model.num_classes == 1000
    assert model.net.pretrained_cfg["tag"] == "tv_in1k"
    assert model.eval_transform is not None
    assert (model.eval_transform.resize_size, model.eval_transform.interpolation) == (
        256,
        "bilinear",
    )
    assert model(X).shape == (2, 1000)


def test_torchvision_weights_version_from_a_local_file(tmp_path):
    import torchvision

    torch.manual_seed(0)
    source = torchvision.models.resnet50().eval()
    path = tmp_path / "resnet50_v1.pth"
    torch.save(source.state_dict(), path)
    model = build_classifier("torchvision:resnet50.IMAGENET1K_V1", weights=str(path))
    assert model.name == "torchvision:resnet50.IMAGENET1K_V1" and model.num_classes == 1000
    for name, tensor in source.state_dict().items():
        assert torch.equal(model.net.state_dict()[name], tensor), name
    torch.testing.assert_close(model(X), source((X - model.mean) / model.std))
    assert model.eval_transform is not None and model.eval_transform.resize_size == 256
    default = build_classifier("torchvision:resnet50.DEFAULT", pretrained=False)
    assert default.eval_transform is not None and default.eval_transform.resize_size == 232  # V2


def test_named_weights_are_what_a_spec_loads(monkeypatch):
    from torchvision.models import ResNet50_Weights, WeightsEnum

    requested = []

    def offline(weights, *args, **kwargs):
        requested.append(weights.url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(InversionError, match="needs the network"):
        build_classifier("torchvision:resnet50.IMAGENET1K_V1")  # a version names weights
    assert requested == [ResNet50_Weights.IMAGENET1K_V1.url]
    assert build_classifier("torchvision:resnet18").num_classes == 1000  # bare: random init
    assert requested == [ResNet50_Weights.IMAGENET1K_V1.url]


def test_timm_fine_tuning_from_a_local_file_gets_a_fresh_head(tmp_path):
    import timm

    torch.manual_seed(0)
    source = timm.create_model("resnet18")  # 1000 classes, as ImageNet weights
    path = tmp_path / "resnet18_in1k.pth"
    torch.save(source.state_dict(), path)
    model = build_classifier("timm:resnet18", num_classes=10, weights=str(path))
    assert model.num_classes == 10 and model.net.fc.weight.shape == (10, 512)
    loaded = model.net.state_dict()
    for name, tensor in source.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(loaded[name], tensor), name
    assert model(X).shape == (2, 10)
    same = build_classifier("timm:resnet18", weights=str(path))  # the file's own head kept
    assert torch.equal(same.net.fc.weight, source.fc.weight)
    gray = build_classifier("timm:resnet18", num_classes=10, in_chans=1, weights=str(path))
    assert gray.net.conv1.weight.shape[1] == 1  # timm adapts the first convolution


def test_timm_vit_weights_file_at_another_input_size(tmp_path):
    import timm

    source = timm.create_model("vit_tiny_patch16_224")
    path = tmp_path / "vit.pth"
    torch.save(source.state_dict(), path)
    model = build_classifier(
        "timm:vit_tiny_patch16_224", num_classes=10, input_size=32, weights=str(path)
    )
    assert model.input_size == (32, 32) and model(X).shape == (2, 10)
    assert torch.equal(model.net.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)


def test_timm_hf_hub_name_offline_from_the_hub_cache(tmp_path, monkeypatch):
    """An hf-hub: name reads its config from the Hub cache offline; weights from a file."""
    import json

    import huggingface_hub.constants
    import timm

    commit = "0" * 40
    repo = tmp_path / "hub" / "models--someorg--tiny-resnet"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    config = {
        "architecture": "resnet18",
        "num_classes": 10,
        "pretrained_cfg": {
            "input_size": [3, 160, 160],
            "interpolation": "bicubic",
            "crop_pct": 0.95,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "classifier": "fc",
            "num_classes": 10,
        },
    }
    (repo / "snapshots" / commit / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    model = build_classifier("timm:hf-hub:someorg/tiny-resnet", pretrained=False)
    assert model.num_classes == 10 and model.input_size == (160, 160)
    assert model.eval_transform is not None and model.eval_transform.resize_size == 168
    torch.testing.assert_close(model.mean.flatten(), torch.full((3,), 0.5))
    source = timm.create_model("resnet18", num_classes=10)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    loaded = build_classifier("timm:hf-hub:someorg/tiny-resnet", weights=str(tmp_path / "w.pt"))
    assert torch.equal(loaded.net.fc.weight, source.fc.weight)
    with pytest.raises(InversionError, match="HF_HUB_OFFLINE"):
        build_classifier("timm:hf-hub:someorg/not-cached", pretrained=False)


def test_missing_weights_file():
    with pytest.raises(InversionError, match="not found"):
        build_classifier("timm:resnet18", weights="/nonexistent/w.pt")


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": {"x": urllib.error.URLError("x")}}, handle)
    torch.save({"obj": urllib.error.URLError("x")}, path)
    with pytest.raises(InversionError, match="weights_only"):
        build_classifier("timm:resnet18", weights=str(path))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("timm:resnet51", "timm:resnet50"),
        ("torchvision:resnt18", "torchvision:resnet18"),
        ("digits:cnnn", "digits:cnn"),
        ("tim:resnet18", "Did you mean timm:resnet18"),
        ("nonsense", "Use one of"),
        ("timm:", "names no model"),
        ("checkpoints/missing.ckpt", "Checkpoint file not found"),
        ("timm:resnet50.tv_in1kk", "timm:resnet50.tv_in1k"),
        ("timm:resnet51.tv_in1k", "Unknown timm model"),
        ("timm:hf-hub:no-organisation", "hf-hub:ORG/NAME"),
        ("torchvision:resnet50.IMAGENET1K_V3", "torchvision:resnet50.IMAGENET1K_V1"),
        ("torchvision:resnt50.IMAGENET1K_V1", "torchvision:resnet50"),
    ],
)
def test_unknown_specs_suggest_close_names(spec, match):
    with pytest.raises(InversionError, match=match):
        build_classifier(spec)


def test_pretrained_timm_offline_says_how_to_fix():
    with pytest.raises(InversionError, match="weights=PATH"):
        build_classifier("timm:resnet18", pretrained=True)


def test_pretrained_torchvision_offline_says_how_to_fix(monkeypatch):
    from torchvision.models import WeightsEnum

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(InversionError, match="needs the network"):
        build_classifier("torchvision:resnet18", pretrained=True)


def test_pretrained_and_weights_together_is_an_error(tmp_path):
    with pytest.raises(InversionError, match="not both"):
        build_classifier("timm:resnet18", pretrained=True, weights=str(tmp_path / "w.pt"))


def test_digits_zoo_options_that_contradict_training():
    with pytest.raises(InversionError, match="pretrained=False"):
        build_classifier("digits:cnn", num_classes=5)


def test_plain_state_dict_is_not_a_checkpoint_spec(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(build_classifier("digits:cnn", pretrained=False).net.state_dict(), path)
    with pytest.raises(InversionError, match="weights=PATH"):
        build_classifier(str(path))
