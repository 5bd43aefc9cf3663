"""Image priors, DeepInversion's batch-norm statistics term and ADI's competition loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inversion.errors import InversionError
from inversion.models.zoo import wrap_digits_net
from inversion.priors import BatchNormStatistics, competition_loss, l2_prior, total_variation_l2


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- total variation and L2 ----------------------------------------------------------


def test_tv_of_a_constant_image_is_zero_with_a_finite_gradient():
    images = torch.full((2, 3, 8, 8), 0.3, requires_grad=True)
    loss = total_variation_l2(images)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.isfinite(images.grad).all()


def test_tv_matches_a_hand_computation():
    images = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    # horizontal (0-1, 2-4), vertical (0-2, 1-4), anti-diagonal 2-1, diagonal 0-4
    expected = math.sqrt(1 + 4) + math.sqrt(4 + 9) + 1.0 + 4.0
    assert math.isclose(float(total_variation_l2(images)), expected, rel_tol=1e-6)


def test_tv_matches_deepinversion_loss_var_l2():
    x = torch.rand(3, 3, 10, 12, generator=seeded(1))
    diff1 = x[:, :, :, :-1] - x[:, :, :, 1:]
    diff2 = x[:, :, :-1, :] - x[:, :, 1:, :]
    diff3 = x[:, :, 1:, :-1] - x[:, :, :-1, 1:]
    diff4 = x[:, :, :-1, :-1] - x[:, :, 1:, 1:]
    expected = torch.norm(diff1) + torch.norm(diff2) + torch.norm(diff3) + torch.norm(diff4)
    assert torch.allclose(total_variation_l2(x), expected)


def test_tv_prefers_smooth_images_and_has_a_gradient():
    noise = torch.rand(1, 3, 16, 16, generator=seeded(2), requires_grad=True)
    smooth = F.avg_pool2d(noise.detach(), 5, stride=1, padding=2, count_include_pad=False)
    assert total_variation_l2(smooth) < 0.5 * total_variation_l2(noise)
    total_variation_l2(noise).backward()
    assert noise.grad is not None and noise.grad.abs().sum() > 0


def test_l2_prior_is_the_mean_per_image_norm():
    images = torch.tensor([[[[3.0, 4.0]]], [[[0.0, 3.0]]]])
    assert math.isclose(float(l2_prior(images)), 4.0)
    with pytest.raises(InversionError, match="N x C x H x W"):
        l2_prior(torch.rand(3, 4))


# --- batch-norm statistics -----------------------------------------------------------


def matched_bn(x: torch.Tensor) -> nn.BatchNorm2d:
    """A BN layer in eval mode whose running statistics are exactly those of ``x``."""
    bn = nn.BatchNorm2d(x.shape[1]).eval()
    bn.running_mean.copy_(x.mean(dim=(0, 2, 3)))
    bn.running_var.copy_(x.var(dim=(0, 2, 3), unbiased=False))
    return bn


def test_bn_loss_is_zero_for_matching_statistics_and_exact_for_shifts():
    x = torch.randn(8, 3, 6, 6, generator=seeded(3)) * 2 + 1
    bn = matched_bn(x)
    with BatchNormStatistics(bn) as stats:
        bn(x)
        assert float(stats.loss()) < 1e-4
        bn(x + 0.5)  # mean off by 0.5 per channel; first (only) layer weighted x10
        assert math.isclose(float(stats.loss()), 10 * 0.5 * math.sqrt(3), rel_tol=1e-4)
        bn(x * 2)  # variance x4 (and the mean x2)
        var = x.var(dim=(0, 2, 3), unbiased=False)
        mean = x.mean(dim=(0, 2, 3))
        expected = 10 * (float(mean.norm()) + float((3 * var).norm()))
        assert math.isclose(float(stats.loss()), expected, rel_tol=1e-4)


def test_bn_loss_uses_the_layer_input_and_biased_variance():
    x = torch.randn(4, 2, 3, 3, generator=seeded(4))
    bn = nn.BatchNorm2d(2).eval()  # running mean 0, var 1
    with BatchNormStatistics(bn, first_multiplier=1.0) as stats:
        bn(x)
        var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
        expected = (mean - 0).norm() + (var - 1).norm()
        assert torch.allclose(stats.loss(), expected, atol=1e-6)


def two_bn_net() -> nn.Sequential:
    torch.manual_seed(5)
    net = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4))
    return net.eval()


def test_first_layer_multiplier():
    net = two_bn_net()
    x = torch.randn(4, 3, 8, 8, generator=seeded(6)) + 0.7
    with BatchNormStatistics(net, first_multiplier=1.0) as plain:
        net(x)
        first, second = plain.layer_losses
        assert first > 0.1 and second > 0.1
        assert torch.allclose(plain.loss(), first + second)
    with BatchNormStatistics(net) as weighted:  # default x10
        net(x)
        assert torch.allclose(weighted.loss(), 10 * first + second)


def test_gradient_reaches_the_input():
    net = two_bn_net()
    x = torch.randn(4, 3, 8, 8, generator=seeded(7)).requires_grad_()
    with BatchNormStatistics(net) as stats:
        net(x)
        stats.loss().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters() if not p.requires_grad)


def test_gradient_descent_on_the_input_reduces_the_loss():
    x0 = torch.randn(8, 3, 6, 6, generator=seeded(8))
    bn = matched_bn(x0)
    x = (x0 * 1.5 + 0.4).requires_grad_()
    with BatchNormStatistics(bn) as stats:
        bn(x)
        start = float(stats.loss().detach())
        for _ in range(100):
            bn(x)
            (grad,) = torch.autograd.grad(stats.loss(), x)
            with torch.no_grad():
                x -= 0.5 * grad
        bn(x)
        assert float(stats.loss().detach()) < 0.05 * start


def test_loss_is_for_the_most_recent_forward_pass_and_hooks_are_removed():
    net = two_bn_net()
    a = torch.randn(4, 3, 8, 8, generator=seeded(9))
    b = a + 1.0
    with BatchNormStatistics(net) as stats:
        net(a)
        loss_a = stats.loss()
        net(b)
        loss_b = stats.loss()
        net(a)
        assert torch.allclose(stats.loss(), loss_a)
        assert not torch.allclose(loss_a, loss_b)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    net(b)  # no longer recorded
    assert torch.allclose(stats.loss(), loss_a)
    stats.remove()  # idempotent


def test_remove_without_context_manager():
    net = two_bn_net()
    stats = BatchNormStatistics(net)
    assert any(m._forward_hooks for m in net.modules())
    stats.remove()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_loss_before_a_forward_pass_is_an_error():
    with BatchNormStatistics(two_bn_net()) as stats, pytest.raises(InversionError, match="forward"):
        stats.loss()


def test_model_without_batch_norm_is_an_error():
    with pytest.raises(InversionError, match="batch norm"):
        BatchNormStatistics(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)))
    with pytest.raises(InversionError, match="running"):
        BatchNormStatistics(nn.BatchNorm2d(3, track_running_stats=False))


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_digits_nets_with_batch_norm(arch: str):
    model = wrap_digits_net(arch).eval()
    layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    x = torch.rand(2, 1, 32, 32, generator=seeded(10), requires_grad=True)
    with BatchNormStatistics(model) as stats:
        model(x)
        assert len(stats.layer_losses) == len(layers) > 1
        loss = stats.loss()
    loss.backward()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", ["vit", "mlp"])
def test_digits_nets_without_batch_norm(arch: str):
    with pytest.raises(InversionError, match="digits:cnn"):
        BatchNormStatistics(wrap_digits_net(arch))


# --- competition loss ----------------------------------------------------------------


@pytest.mark.parametrize("form", ["clamped", "exact"])
def test_competition_loss_is_one_for_identical_distributions(form):
    logits = torch.randn(5, 10, generator=seeded(11))
    assert math.isclose(float(competition_loss(logits, logits, form=form)), 1.0, abs_tol=1e-6)
    shifted = competition_loss(logits, logits + 3.0, form=form)
    assert math.isclose(float(shifted), 1.0, abs_tol=1e-6)


def test_exact_competition_loss_is_bounded_and_lower_for_disagreement():
    teacher = torch.randn(64, 10, generator=seeded(12)) * 5
    student = torch.randn(64, 10, generator=seeded(13)) * 5
    value = float(competition_loss(teacher, student, form="exact"))
    assert 1 - math.log(2) <= value < 1 - 1e-3
    opposite = torch.full((3, 4), -200.0)
    teacher, student = opposite.clone(), opposite.clone()
    teacher[:, 0] = 200.0
    student[:, 1] = 200.0
    exact = competition_loss(teacher, student, form="exact")
    assert math.isclose(float(exact), 1 - math.log(2), abs_tol=1e-5)


def test_exact_competition_loss_matches_a_direct_computation():
    teacher = torch.randn(6, 7, generator=seeded(14))
    student = torch.randn(6, 7, generator=seeded(15))
    temperature = 2.0
    p = F.softmax(teacher / temperature, dim=1)
    q = F.softmax(student / temperature, dim=1)
    m = (p + q) / 2
    js = 0.5 * ((p * (p / m).log()).sum(1) + (q * (q / m).log()).sum(1))
    expected = 1 - js.mean()
    actual = competition_loss(teacher, student, temperature, form="exact")
    assert torch.allclose(actual, expected, atol=1e-6)
    swapped = competition_loss(student, teacher, temperature, form="exact")
    assert torch.allclose(swapped, actual)  # symmetric
    # A higher temperature softens both distributions: they agree more.
    hot = competition_loss(teacher, student, 10.0, form="exact")
    assert hot > competition_loss(teacher, student, 1.0, form="exact")


def test_clamped_competition_loss_is_the_reference_formula_and_the_default():
    """NVlabs: P, Q, M clamped to [0.01, 0.99]; 0.5 KLDiv(log P, M) + 0.5 KLDiv(log Q, M)."""
    teacher = torch.randn(6, 7, generator=seeded(18)) * 3
    student = torch.randn(6, 7, generator=seeded(19)) * 3
    p = F.softmax(student / 3.0, dim=1)
    q = F.softmax(teacher / 3.0, dim=1)
    m = 0.5 * (p + q)
    p, q, m = p.clamp(0.01, 0.99), q.clamp(0.01, 0.99), m.clamp(0.01, 0.99)
    kl = torch.nn.KLDivLoss(reduction="batchmean")
    expected = 1.0 - torch.clamp(0.5 * kl(p.log(), m) + 0.5 * kl(q.log(), m), 0.0, 1.0)
    actual = competition_loss(teacher, student)
    assert torch.allclose(actual, expected, atol=1e-6)
    assert torch.equal(actual, competition_loss(teacher, student, form="clamped"))
    assert not torch.allclose(actual, competition_loss(teacher, student, form="exact"))


def test_clamped_competition_loss_is_finite_for_one_hot_probabilities():
    teacher = torch.full((3, 4), -1e4)
    student = torch.full((3, 4), -1e4)
    teacher[:, 0] = 1e4
    student[:, 1] = 1e4  # one-hot and disagreeing: softmax gives exact 0s and 1s
    teacher.requires_grad_(True)
    student.requires_grad_(True)
    value = competition_loss(teacher, student)
    assert torch.isfinite(value) and 0.0 <= float(value.detach()) <= 1.0
    value.backward()
    assert torch.isfinite(teacher.grad).all() and torch.isfinite(student.grad).all()
    same = competition_loss(teacher.detach(), teacher.detach())  # one-hot and agreeing
    assert math.isclose(float(same), 1.0, abs_tol=1e-6)


@pytest.mark.parametrize("form", ["clamped", "exact"])
def test_competition_loss_gradients_and_errors(form):
    teacher = torch.randn(4, 5, generator=seeded(16), requires_grad=True)
    student = torch.randn(4, 5, generator=seeded(17), requires_grad=True)
    competition_loss(teacher, student, form=form).backward()
    assert torch.isfinite(teacher.grad).all() and teacher.grad.abs().sum() > 0
    assert torch.isfinite(student.grad).all()
    with pytest.raises(InversionError, match="shape"):
        competition_loss(torch.randn(4, 5), torch.randn(4, 6))
    with pytest.raises(InversionError, match="temperature"):
        competition_loss(torch.randn(4, 5), torch.randn(4, 5), temperature=0.0)
    with pytest.raises(InversionError, match="choose one of"):
        competition_loss(torch.randn(4, 5), torch.randn(4, 5), form="js")  # type: ignore[arg-type]
