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
    with pytest.raises(InversionError, match="num_classes"):
        build_classifier("timm:resnet18", num_classes=5, weights=str(path))
    with pytest.raises(InversionError, match="does not match"):
        build_classifier("timm:resnet34", num_classes=10, weights=str(path))


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
    ],
)
def test_unknown_specs_suggest_close_names(spec, match):
    with pytest.raises(InversionError, match=match):
        build_classifier(spec)


def test_pretrained_timm_offline_says_how_to_fix():
    with pytest.raises(InversionError, match="weights=PATH"):
        build_classifier("timm:resnet18", pretrained=True)


def test_pretrained_torchvision_offline_says_how_to_fix(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
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
