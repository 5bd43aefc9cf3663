import pytest
import torch
from torch import nn

from inversion import ImageClassifier, InversionError, build_classifier
from inversion.models import PENULTIMATE


def _tiny(in_chans: int = 3, fixed: bool = False) -> ImageClassifier:
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(in_chans, 4, 3, padding=1))
    net.add_module("bn", nn.BatchNorm2d(4))
    net.add_module("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    net.add_module("fc", nn.Linear(4, 5))
    return ImageClassifier(
        net,
        name="tiny",
        num_classes=5,
        in_chans=in_chans,
        input_size=(16, 16),
        mean=[0.2] * in_chans,
        std=[0.5] * in_chans,
        fixed_size=fixed,
        head="fc",
    )


def test_normalises_inside():
    model = _tiny().eval()
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(model(x), model.net((x - 0.2) / 0.5))


def test_adapts_channels():
    rgb_model, gray_model = _tiny(3).eval(), _tiny(1).eval()
    gray = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(rgb_model(gray), rgb_model(gray.expand(-1, 3, -1, -1)))
    rgb = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(gray_model(rgb), gray_model(rgb.mean(1, keepdim=True)))


def test_fixed_size_resizes_inputs_and_others_do_not():
    fixed, free = _tiny(fixed=True).eval(), _tiny(fixed=False).eval()
    seen = []
    fixed.net.conv.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    free.net.conv.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    x = torch.rand(1, 3, 40, 24)
    fixed(x)
    free(x)
    assert seen == [(16, 16), (40, 24)]


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.rand(3, 16, 16), "batch of images"),
        (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), "floating-point"),
        (torch.rand(1, 4, 16, 16), "4 channels"),
    ],
)
def test_bad_inputs_give_one_clear_error(images, match):
    with pytest.raises(InversionError, match=match):
        _tiny()(images)


def test_freeze_keeps_eval_and_no_grads():
    model = _tiny().freeze()
    model.train()
    assert not model.training and not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    before = model.net.bn.running_mean.clone()
    model(torch.rand(4, 3, 16, 16))
    torch.testing.assert_close(model.net.bn.running_mean, before)
    parent = nn.Module()
    parent.inner = model
    parent.train()  # a LightningModule's .train() call must not undo freeze()
    assert not model.training


def test_unfrozen_model_trains():
    model = _tiny()
    model.train()
    assert model.training and model.net.bn.training


def test_feature_taps_match_manual_forward_and_leave_no_hooks():
    model = _tiny().eval()
    x = torch.rand(2, 3, 16, 16)
    logits, feats = model.forward_with_features(x, ["conv", PENULTIMATE])
    expected_conv = model.net.conv(model.prepare(x))
    torch.testing.assert_close(feats["conv"], expected_conv)
    torch.testing.assert_close(feats[PENULTIMATE], model.net.pool(model.net.bn(expected_conv)))
    torch.testing.assert_close(logits, model(x))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_gradients_flow_through_taps_to_the_input():
    model = _tiny().freeze()
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    model.penultimate(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_unknown_layer_lists_close_names():
    model = _tiny()
    with pytest.raises(InversionError, match="Close names: conv"):
        model.features(torch.rand(1, 3, 16, 16), ["convv"])
    assert "penultimate" in model.layer_names() and "pool.1" in model.layer_names()


def test_every_zoo_architecture_taps_its_feature_layers():
    for arch in ("cnn", "resnet", "vit", "mlp"):
        model = build_classifier(f"digits:{arch}", pretrained=False).eval()
        feats = model.features(torch.rand(2, 1, 32, 32), [*model.feature_layers, PENULTIMATE])
        assert set(feats) == {*model.feature_layers, PENULTIMATE}
        assert feats[PENULTIMATE].ndim == 2 and feats[PENULTIMATE].shape[0] == 2
