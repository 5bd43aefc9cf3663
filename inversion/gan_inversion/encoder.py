"""GAN inversion: an encoder E trained only on generated pairs (z, G(z)), with a cycle term.

Loss for a batch of latent codes z (G frozen, x = G(z)):
``latent`` ||E(x) - z||^2 and ``cycle`` ||G(E(x)) - x||^2 (G(E(x)) = x: re-generating from
the recovered code gives the image back). Re-generating from the code of a damaged
image, G(E(x')), repairs it: :func:`corrupt` damages images, :func:`inversion_metrics`
reports latent recovery, reconstruction and repair.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.errors import InversionError
from inversion.metrics.reconstruction import psnr, ssim
from inversion.options import with_fields


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
