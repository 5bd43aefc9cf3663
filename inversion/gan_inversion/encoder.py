"""GAN inversion: an encoder E trained only on generated pairs (z, G(z)), with a cycle term.

Loss for a batch of latent codes z (G frozen, x = G(z)):
``latent`` ||E(x) - z||^2 and ``cycle`` ||G(E(x)) - x||^2 (G(E(x)) = x: re-generating from
the recovered code gives the image back). Re-generating from the code of a damaged
image, G(E(x')), repairs it: :func:`corrupt` damages images, :func:`inversion_metrics`
reports latent recovery, reconstruction and repair. :func:`train_encoder` is the
plain-PyTorch training loop (``GANInversion`` is its Lightning shell).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.errors import InversionError
from inversion.metrics.reconstruction import psnr, ssim
from inversion.options import with_fields

if TYPE_CHECKING:  # dcgan imports ConvEncoder from here
    from inversion.gan_inversion.dcgan import DCGANGenerator


class ConvEncoder(nn.Module):
    """Images N x C x S x S to N x out_dim: strided 4x4 convolutions, then a linear layer.

    The DCGAN discriminator (``out_dim=1``, logits) and the GAN-inversion encoder
    (``out_dim=latent_dim``) share it.
    """

    def __init__(
        self, out_dim: int, channels: int = 1, width: int = 32, image_size: int = 32
    ) -> None:
        super().__init__()
        steps = image_size.bit_length() - 3
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(steps):
            c_out = width << i
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, True))
            c_in = c_out
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(c_in * 16, out_dim)

    def forward(self, images: Tensor) -> Tensor:  # noqa: D102
        return self.head(self.net(images))


@dataclasses.dataclass(frozen=True)
class EncoderWeights:
    """Weights of the encoder's loss terms (both are means of squared errors).

    The default balances their scales: codes are N(0, 1), so the latent term starts near
    1, while pixels are in [0, 1] and the image term of a fair reconstruction is about
    1e-3 to 1e-2 (the digits table shows weight 1 leaves the cycle term without effect).

    Attributes:
        latent: ||E(G(z)) - z||^2.
        cycle: ||G(E(G(z))) - G(z)||^2.
    """

    latent: float = 1.0
    cycle: float = 100.0

    @classmethod
    def from_dict(cls, weights: dict[str, float] | None) -> EncoderWeights:
        """Build from a YAML dict; an unknown key lists the valid ones."""
        values = {k: float(v) for k, v in (weights or {}).items()}
        return with_fields(cls(), values, "loss weights")


def encoder_loss(
    encoder: nn.Module, generator: nn.Module, z: Tensor, weights: EncoderWeights
) -> tuple[Tensor, dict[str, Tensor]]:
    """The encoder's loss on latent codes ``z`` (the generator is frozen)."""
    with torch.no_grad():
        images = generator(z)
    codes = encoder(images)
    parts = {"latent": F.mse_loss(codes.float(), z.float())}
    loss = weights.latent * parts["latent"]
    if weights.cycle:
        parts["cycle"] = F.mse_loss(generator(codes).float(), images.float())
        loss = loss + weights.cycle * parts["cycle"]
    return loss, parts


def new_encoder(generator: DCGANGenerator, width: int, seed: int) -> ConvEncoder:
    """A fresh encoder for ``generator``'s codes and images, initialised from ``seed``.

    The initialisation draws from the global RNG seeded with ``seed`` inside a fork, so the
    caller's RNG state is left alone and the same seed gives the same encoder anywhere.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ConvEncoder(generator.latent_dim, generator.channels, width, generator.image_size)


def latent_stream(batch: int, latent_dim: int, seed: int) -> Iterable[Tensor]:
    """Endless batches of N(0, I) codes, all drawn in turn from one generator seeded ``seed``."""
    rng = torch.Generator().manual_seed(seed)
    while True:
        yield torch.randn(batch, latent_dim, generator=rng)


def train_encoder(
    generator: DCGANGenerator,
    weights: EncoderWeights = EncoderWeights(),
    steps: int = 600,
    batch: int = 64,
    lr: float = 1e-3,
    width: int = 32,
    seed: int = 0,
    latents: Iterable[Tensor] | None = None,
) -> ConvEncoder:
    """Train an encoder of a frozen ``generator`` on generated pairs (z, G(z)) only.

    Adam at ``lr`` on :func:`encoder_loss`, one batch of codes per step. The encoder is
    :func:`new_encoder` (initialised from ``seed``); the codes are ``latents`` (one
    batch per step, e.g. a ``LatentCodesDataModule``'s), by default :func:`latent_stream`
    (``batch`` codes per step from one generator seeded with ``seed``).

    Args:
        generator: The frozen generator (``latent_dim``, ``channels``, ``image_size``).
        weights: Weights of the loss terms.
        steps: Optimisation steps.
        batch: Codes per step (default stream only).
        lr: Adam learning rate.
        width: Channels of the encoder's first convolution.
        seed: Seed of the encoder's initialisation and of the default codes.
        latents: Batches of codes, at least ``steps`` of them.

    Returns:
        The trained encoder, in training mode (call ``.eval()`` to use it).
    """
    encoder = new_encoder(generator, width, seed)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr)
    if latents is None:
        latents = latent_stream(batch, generator.latent_dim, seed)
    codes = iter(latents)
    for step in range(steps):
        z = next(codes, None)
        if z is None:
            raise InversionError(f"latents ran out after {step} of {steps} steps.")
        loss, _ = encoder_loss(encoder, generator, z, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return encoder


def corrupt(images: Tensor, patch: int, generator: torch.Generator | None = None) -> Tensor:
    """Paste one square of uniform noise (side ``patch``) at a random place in each image.

    Vectorised over the batch; the randomness is drawn on the CPU (reproducible).
    """
    n, c, h, w = images.shape
    if not 0 < patch <= min(h, w):
        raise InversionError(f"patch must be in 1..{min(h, w)}, got {patch}.")
    top = torch.randint(0, h - patch + 1, (n, 1, 1), generator=generator)
    left = torch.randint(0, w - patch + 1, (n, 1, 1), generator=generator)
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    mask = (rows >= top) & (rows < top + patch) & (cols >= left) & (cols < left + patch)
    noise = torch.rand(n, c, h, w, generator=generator).to(images)
    return torch.where(mask.unsqueeze(1).to(images.device), noise, images)


@torch.no_grad()
def inversion_metrics(
    encoder: nn.Module,
    generator: nn.Module,
    z: Tensor,
    patch: int = 12,
    generator_rng: torch.Generator | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Latent recovery, reconstruction and repair on held-out codes ``z``.

    Returns:
        ``(metrics, images)``: per-sample metrics ``latent_mse``, ``latent_cosine``,
        ``psnr``/``ssim`` of G(E(G(z))) against G(z), ``psnr_corrupted`` (damaged vs clean)
        and ``psnr_repaired`` (G(E(damaged)) vs clean); and the images ``original``,
        ``reconstructed``, ``corrupted``, ``repaired``.
    """
    originals = generator(z)
    codes = encoder(originals)
    reconstructed = generator(codes)
    corrupted = corrupt(originals, patch, generator_rng)
    repaired = generator(encoder(corrupted))
    metrics = {
        "latent_mse": (codes.float() - z.float()).pow(2).mean(dim=1),
        "latent_cosine": F.cosine_similarity(codes.float(), z.float(), dim=1),
        "psnr": psnr(reconstructed, originals),
        "ssim": ssim(reconstructed, originals),
        "psnr_corrupted": psnr(corrupted, originals),
        "psnr_repaired": psnr(repaired, originals),
    }
    images = {
        "original": originals,
        "reconstructed": reconstructed,
        "corrupted": corrupted,
        "repaired": repaired,
    }
    return metrics, images
