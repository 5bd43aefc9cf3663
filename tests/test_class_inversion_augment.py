"""Augmentations for class inversion: jitter, flip, ensemble, ColorShift, centering + zoom."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from inversion.class_inversion.augment import (
    centre_paste,
    circular_jitter,
    color_shift,
    jitter_for_size,
    random_flip,
    replicate,
    stage_sizes,
)
from inversion.errors import InversionError


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def one_hot_images(n: int = 4, c: int = 2, size: int = 16, at: tuple[int, int] = (5, 7)):
    images = torch.zeros(n, c, size, size)
    images[..., at[0], at[1]] = 1.0
    return images


def peak(image: torch.Tensor) -> tuple[int, int]:
    """Row and column of the single 1 in an H x W image."""
    index = int(image.flatten().argmax())
    return divmod(index, image.shape[-1])


def recovered_shift(images: torch.Tensor, at: tuple[int, int]) -> set[tuple[int, int]]:
    """The (dy, dx) shifts (wrapped to [-H/2, H/2)) of the one-hot images, one per channel."""
    size = images.shape[-1]
    shifts = set()
    for image in images.flatten(0, 1):
        row, col = peak(image)
        dy = (row - at[0] + size // 2) % size - size // 2
        dx = (col - at[1] + size // 2) % size - size // 2
        shifts.add((dy, dx))
    return shifts


# --- circular jitter -------------------------------------------------------------------


def test_jitter_is_one_roll_shared_by_the_batch():
    images = torch.rand(5, 3, 12, 12, generator=seeded(1))
    out = circular_jitter(images, 3, seeded(2))
    matches = [
        (dy, dx)
        for dy in range(-3, 4)
        for dx in range(-3, 4)
        if torch.equal(out, torch.roll(images, (dy, dx), dims=(-2, -1)))
    ]
    assert len(matches) == 1  # one roll of the whole batch explains every image
    assert torch.allclose(out.sum(dim=(1, 2, 3)), images.sum(dim=(1, 2, 3)))


def test_jitter_shift_recoverable_and_bounded_over_many_draws():
    at = (8, 8)
    images = one_hot_images(n=3, size=16, at=at)
    generator = seeded(3)
    seen_dy, seen_dx = set(), set()
    for _ in range(300):
        shifts = recovered_shift(circular_jitter(images, 3, generator), at)
        assert len(shifts) == 1  # same shift for every image and channel
        ((dy, dx),) = shifts
        assert -3 <= dy <= 3 and -3 <= dx <= 3
        seen_dy.add(dy)
        seen_dx.add(dx)
    assert seen_dy == seen_dx == set(range(-3, 4))  # the whole range, both ends included


def test_jitter_wraps_around():
    at = (0, 15)
    images = one_hot_images(n=1, c=1, size=16, at=at)
    generator = seeded(4)
    wrapped = False
    for _ in range(50):
        out = circular_jitter(images, 2, generator)
        assert out.sum() == 1.0
        row, col = peak(out[0, 0])
        wrapped |= row > 8 or col < 8
    assert wrapped


def test_jitter_zero_is_identity_and_negative_is_an_error():
    images = torch.rand(2, 3, 8, 8)
    assert circular_jitter(images, 0) is images
    with pytest.raises(InversionError, match="max_shift"):
        circular_jitter(images, -1)
    with pytest.raises(InversionError, match="N x C x H x W"):
        circular_jitter(torch.rand(3, 8, 8), 2)


def test_jitter_uses_the_global_rng_by_default():
    images = torch.rand(2, 1, 16, 16)
    torch.manual_seed(11)
    first = circular_jitter(images, 5)
    torch.manual_seed(11)
    assert torch.equal(circular_jitter(images, 5), first)


# --- flip ----------------------------------------------------------------------------


def test_flip_is_one_coin_for_the_batch():
    images = torch.rand(6, 3, 8, 8, generator=seeded(5))
    generator = seeded(6)
    flips = 0
    for _ in range(200):
        out = random_flip(images, 0.5, generator)
        if torch.equal(out, images.flip(-1)):
            flips += 1
        else:
            assert torch.equal(out, images)  # never a mix of flipped and unflipped images
    assert 70 < flips < 130


def test_flip_probability_extremes_and_direction():
    images = torch.arange(4.0).reshape(1, 1, 1, 4)
    assert torch.equal(random_flip(images, 1.0), torch.tensor([[[[3.0, 2.0, 1.0, 0.0]]]]))
    assert random_flip(images, 0.0) is images
    with pytest.raises(InversionError, match="probability"):
        random_flip(images, 1.5)


# --- replicate ------------------------------------------------------------------------


def test_replicate_is_ensemble_major():
    images = torch.rand(3, 2, 4, 4)
    out = replicate(images, 4)
    assert out.shape == (12, 2, 4, 4)
    for k in range(4):
        for i in range(3):
            assert torch.equal(out[k * 3 + i], images[i])
    assert replicate(images, 1) is images
    with pytest.raises(InversionError, match="copies"):
        replicate(images, 0)


# --- colour shift ----------------------------------------------------------------------


def shift_and_scale(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mu and sigma of a colour shift applied to images whose two pixels are 0 and 1."""
    mu = out[..., 0, 0]
    sigma = out[..., 0, 1] - mu
    return mu, sigma


def zero_one_images(n: int, c: int = 3) -> torch.Tensor:
    return torch.tensor([0.0, 1.0]).expand(n, c, 1, 2).clone()


def test_color_shift_ranges_and_statistics():
    out = color_shift(zero_one_images(4000), generator=seeded(7))
    mu, sigma = shift_and_scale(out)
    assert mu.shape == sigma.shape == (4000, 3)
    assert mu.min() >= -1 and mu.max() <= 1
    assert sigma.min() >= math.exp(-1) - 1e-6 and sigma.max() <= math.exp(1) + 1e-6
    log_sigma = sigma.log()
    third = 1 / math.sqrt(3)  # std of U(-1, 1)
    for values in (mu, log_sigma):
        assert abs(float(values.mean())) < 0.03
        assert abs(float(values.std()) - third) < 0.02
        assert values.min() < -0.97 and values.max() > 0.97  # the whole range is used
    # Independent per image and per channel.
    assert abs(float(torch.corrcoef(mu.T)[0, 1])) < 0.1
    assert abs(float(torch.corrcoef(torch.stack([mu[:, 0], log_sigma[:, 0]]))[0, 1])) < 0.1


def test_color_shift_custom_ranges():
    mu, sigma = shift_and_scale(color_shift(zero_one_images(500), 0.25, 0.5, seeded(8)))
    assert mu.abs().max() <= 0.25 and mu.abs().max() > 0.2
    assert sigma.log().abs().max() <= 0.5 + 1e-6 and sigma.log().abs().max() > 0.45


def test_color_shift_with_zero_ranges_is_identity():
    images = torch.rand(3, 3, 5, 5)
    assert torch.allclose(color_shift(images, 0.0, 0.0, seeded(9)), images)
    with pytest.raises(InversionError, match="ranges"):
        color_shift(images, -0.1, 1.0)


def test_color_shift_differs_per_copy_and_is_not_clamped():
    images = torch.rand(2, 3, 6, 6, generator=seeded(10))
    out = color_shift(replicate(images, 3), generator=seeded(11))
    copies = out.view(3, 2, 3, 6, 6)
    assert not torch.allclose(copies[0], copies[1])
    assert not torch.allclose(copies[1], copies[2])
    assert out.min() < 0 or out.max() > 1


def test_color_shift_is_per_channel_affine():
    images = torch.rand(2, 3, 6, 6, generator=seeded(12))
    out = color_shift(images, generator=seeded(13))
    # Within each image and channel, out = sigma * x + mu exactly: a perfect linear fit.
    x = images.flatten(2)
    y = out.flatten(2)
    sigma = (y[..., 1] - y[..., 0]) / (x[..., 1] - x[..., 0])
    mu = y[..., 0] - sigma * x[..., 0]
    assert torch.allclose(y, sigma[..., None] * x + mu[..., None], atol=1e-5)
    assert not torch.allclose(sigma[:, 0], sigma[:, 1])


# --- jitter_for_size, stage_sizes -----------------------------------------------------


def test_jitter_for_size():
    assert jitter_for_size(224) == 32
    assert jitter_for_size(112) == 16
    assert jitter_for_size(28) == 4
    assert jitter_for_size(32) == 5  # 4.57 rounds up
    assert jitter_for_size(4) == 1  # never 0
    assert jitter_for_size(224, reference_shift=30) == 30
    with pytest.raises(InversionError):
        jitter_for_size(0)


def test_stage_sizes():
    assert stage_sizes(224) == [56, 84, 112, 140, 168, 196, 224]
    big = stage_sizes(384)
    assert big[0] == 96 and big[-1] == 384 and len(big) == 7
    assert big == sorted(big)
    assert stage_sizes(32) == [8, 12, 16, 20, 24, 28, 32]
    assert stage_sizes(28)[-1] == 28
    assert stage_sizes(224, stages=1) == [224]
    assert stage_sizes(64, stages=3) == [32, 48, 64]
    with pytest.raises(InversionError, match="stages"):
        stage_sizes(224, stages=0)
    with pytest.raises(InversionError, match="too small"):
        stage_sizes(1)


# --- centre paste ---------------------------------------------------------------------


@pytest.mark.parametrize(("size", "pad", "small"), [(84, 14, 56), (21, 4, 8), (20, 0, 10)])
def test_centre_paste_geometry(size: int, pad: int, small: int):
    previous = torch.rand(2, 3, small, small, generator=seeded(14))
    out = centre_paste(previous, size, pad, seeded(15))
    assert out.shape == (2, 3, size, size)
    inner = size - pad
    top = (size - inner) // 2
    expected = F.interpolate(previous, size=(inner, inner), mode="bilinear", align_corners=False)
    assert torch.allclose(out[..., top : top + inner, top : top + inner], expected.clamp(0, 1))
    assert out.min() >= 0 and out.max() <= 1
    border = torch.ones(size, size, dtype=torch.bool)
    border[top : top + inner, top : top + inner] = False
    noise = out[..., border]
    assert noise.numel() == 2 * 3 * (size * size - inner * inner)
    if noise.numel() > 1000:  # looks like U(0, 1) noise
        assert abs(float(noise.mean()) - 0.5) < 0.05
        assert abs(float(noise.std()) - math.sqrt(1 / 12)) < 0.03


def test_centre_paste_is_seeded_and_clamps():
    previous = torch.rand(1, 3, 8, 8) * 3 - 1
    first = centre_paste(previous, 16, 2, seeded(16))
    assert torch.equal(first, centre_paste(previous, 16, 2, seeded(16)))
    assert not torch.equal(first, centre_paste(previous, 16, 2, seeded(17)))
    assert first.min() >= 0 and first.max() <= 1
    with pytest.raises(InversionError, match="pad"):
        centre_paste(previous, 16, 16)
    with pytest.raises(InversionError, match="pad"):
        centre_paste(previous, 16, -1)
