"""Augmentations for class inversion (Plug-In Inversion, DeepInversion, DeepDream).

Everything is vectorised over the batch and the ensemble: no Python loop per image or
per copy. Random numbers come from an optional ``torch.Generator`` on the CPU (default:
the global RNG), are drawn on the CPU and moved to the images' device, so seeded runs
give the same draws on any device and no device tensor is ever read back to the host.

Images are float tensors in [0, 1], N x C x H x W.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from inversion.errors import InversionError

__all__ = [
    "centre_paste",
    "circular_jitter",
    "color_shift",
    "jitter_for_size",
    "random_flip",
    "replicate",
    "stage_sizes",
]


def _check_images(images: Tensor, what: str = "images") -> None:
    """Raise unless ``images`` is a 4-d floating-point tensor."""
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise InversionError(f"Expected {what} as an N x C x H x W tensor, got {shape}.")
    if not images.is_floating_point():
        raise InversionError(f"Expected floating-point {what} in [0, 1], got {images.dtype}.")


def _check_generator(generator: torch.Generator | None) -> None:
    """Raise unless ``generator`` is None or a CPU generator."""
    if generator is not None and generator.device.type != "cpu":
        raise InversionError(
            f"Augmentations draw random numbers on the CPU; got a generator on "
            f"{generator.device}. Pass torch.Generator() (CPU) or None."
        )


def _uniform(
    shape: tuple[int, ...],
    low: float,
    high: float,
    like: Tensor,
    generator: torch.Generator | None,
) -> Tensor:
    """U(low, high) of ``shape``, drawn on the CPU and moved to ``like``'s device and dtype."""
    draw = torch.rand(shape, generator=generator, device="cpu")
    draw = draw * (high - low) + low
    return draw.to(device=like.device, dtype=like.dtype)


def circular_jitter(
    images: Tensor, max_shift: int, generator: torch.Generator | None = None
) -> Tensor:
    """Circularly shift the whole batch by one random integer offset.

    One shift (dx, dy), each uniform in [-max_shift, max_shift], is shared by every image
    and applied with ``torch.roll`` on the last two dims (so no pixel is lost).

    Args:
        images: N x C x H x W images.
        max_shift: Largest absolute shift in pixels; 0 returns ``images`` unchanged.
        generator: Optional CPU generator; default the global RNG.

    Returns:
        The shifted images (same shape).
    """
    _check_images(images)
    _check_generator(generator)
    if max_shift < 0:
        raise InversionError(f"Jitter max_shift must be >= 0, got {max_shift}.")
    if max_shift == 0:
        return images
    dx, dy = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    return torch.roll(images, shifts=(dy, dx), dims=(-2, -1))


def random_flip(images: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Flip the whole batch horizontally with probability ``p`` (one coin for all images).

    Args:
        images: N x C x H x W images.
        p: Probability of flipping, in [0, 1].
        generator: Optional CPU generator; default the global RNG.

    Returns:
        The images, all flipped or all unchanged.
    """
    _check_images(images)
    _check_generator(generator)
    if not 0.0 <= p <= 1.0:
        raise InversionError(f"Flip probability p must be in [0, 1], got {p}.")
    if p == 0.0:
        return images
    coin = float(torch.rand((), generator=generator))  # a CPU draw: no device sync
    return images.flip(-1) if coin < p else images


def replicate(images: Tensor, copies: int) -> Tensor:
    """Replicate the batch into an ensemble, ensemble-major.

    ``result[k * N + i] == images[i]`` for copy ``k`` of image ``i``.

    Args:
        images: N x C x H x W images.
        copies: Ensemble size, >= 1.

    Returns:
        (copies * N) x C x H x W images.
    """
    _check_images(images)
    if copies < 1:
        raise InversionError(f"Ensemble copies must be >= 1, got {copies}.")
    if copies == 1:
        return images
    return images.repeat(copies, 1, 1, 1)


def color_shift(
    images: Tensor,
    mean_range: float = 1.0,
    log_std_range: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Plug-In Inversion's ColorShift: ``x * sigma + mu`` per image and channel.

    ``mu ~ U(-mean_range, mean_range)`` and ``sigma = exp(U(-log_std_range, log_std_range))``,
    drawn independently for every image (every ensemble copy) and channel, shaped
    N x C x 1 x 1. The result is not clamped.

    Args:
        images: N x C x H x W images.
        mean_range: Half-width of the shift's range, >= 0.
        log_std_range: Half-width of the log-scale's range, >= 0.
        generator: Optional CPU generator; default the global RNG.

    Returns:
        The colour-shifted images (same shape).
    """
    _check_images(images)
    _check_generator(generator)
    if mean_range < 0 or log_std_range < 0:
        raise InversionError(
            f"Colour-shift ranges must be >= 0, got mean_range={mean_range}, "
            f"log_std_range={log_std_range}."
        )
    shape = (images.shape[0], images.shape[1], 1, 1)
    mu = _uniform(shape, -mean_range, mean_range, images, generator)
    sigma = _uniform(shape, -log_std_range, log_std_range, images, generator).exp()
    return images * sigma + mu


def jitter_for_size(size: int, reference_shift: int = 32, reference_size: int = 224) -> int:
    """The jitter for an image size, scaled from ``reference_shift`` at ``reference_size``.

    Returns ``max(1, round(size * reference_shift / reference_size))``, e.g. 32 at 224,
    4 at 28.
    """
    if size < 1 or reference_size < 1 or reference_shift < 0:
        raise InversionError(
            f"jitter_for_size needs size >= 1, reference_size >= 1 and reference_shift >= 0; "
            f"got size={size}, reference_size={reference_size}, "
            f"reference_shift={reference_shift}."
        )
    return max(1, round(size * reference_shift / reference_size))


def centre_paste(
    previous: Tensor, size: int, pad: int, generator: torch.Generator | None = None
) -> Tensor:
    """Plug-In Inversion's centering + zoom transition between stages.

    ``previous`` is upsampled (bilinear, ``align_corners=False``) to ``size - pad`` pixels
    square and pasted, top-left at ``((size - inner) // 2, (size - inner) // 2)``, into a
    fresh U(0, 1) noise canvas of ``size`` x ``size``. The result is clamped to [0, 1].

    Args:
        previous: N x C x h x w images of the previous stage.
        size: Side of the new stage's images.
        pad: How much smaller the pasted image is than the canvas (``S / 16`` in PII).
        generator: Optional CPU generator for the noise; default the global RNG.

    Returns:
        N x C x size x size images.
    """
    _check_images(previous, "previous images")
    _check_generator(generator)
    inner = size - pad
    if pad < 0 or inner < 1:
        raise InversionError(f"centre_paste needs 0 <= pad < size, got size={size}, pad={pad}.")
    n, c = previous.shape[:2]
    canvas = _uniform((n, c, size, size), 0.0, 1.0, previous, generator)
    upsampled = F.interpolate(previous, size=(inner, inner), mode="bilinear", align_corners=False)
    top = (size - inner) // 2
    canvas[..., top : top + inner, top : top + inner] = upsampled
    return canvas.clamp(0.0, 1.0)


def stage_sizes(native: int, stages: int = 7) -> list[int]:
    """Plug-In Inversion's image sizes for the centering + zoom schedule.

    Sizes ``round(native * (k + 1) / (stages + 1))`` for ``k = 1 .. stages``; the last is
    ``native``. For 224 and 7 stages: [56, 84, 112, 140, 168, 196, 224].

    Args:
        native: The model's native image size.
        stages: Number of stages, >= 1 (1 gives ``[native]``).

    Returns:
        The image size of every stage, increasing.
    """
    if stages < 1:
        raise InversionError(f"The number of stages must be >= 1, got {stages}.")
    if native < 1:
        raise InversionError(f"The native image size must be >= 1, got {native}.")
    sizes = [round(native * (k + 1) / (stages + 1)) for k in range(1, stages + 1)]
    if sizes[0] < 1:
        raise InversionError(
            f"Native size {native} is too small for {stages} stages (the first would be "
            f"{sizes[0]} pixels); use fewer stages."
        )
    return sizes
