"""A small DCGAN for the embedded digits: networks, losses, and the cached trained generator.

``digits:dcgan`` is trained on the digits training split by a seeded plain-PyTorch loop
(the same losses and optimisers as ``model_inversion/lightning_modules/gan_inversion_dcgan.py``) on
first use and cached like the classifier zoo (the recipe's hash is in the file name). The
file has the format of the Lightning module's checkpoints, so :func:`build_generator`
loads either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.data.digits import load_digits_split
from inversion.errors import InversionError
from inversion.gan_inversion.encoder import ConvEncoder
from inversion.models.weights import load_checkpoint_file, module_substate
from inversion.paths import cache_dir, cached_torch_file

GAN_FORMAT = 1


class DCGANGenerator(nn.Module):
    """z (N x latent_dim) to images N x C x S x S in [0, 1]; S = 4 * 2^upsamplings.

    Args:
        latent_dim: Size of the latent code.
        channels: Image channels.
        width: Channels of the last hidden layer (doubled per step towards the latent).
        image_size: Side of the images (a power of two, at least 8).
    """

    def __init__(
        self, latent_dim: int = 32, channels: int = 1, width: int = 32, image_size: int = 32
    ) -> None:
        super().__init__()
        steps = image_size.bit_length() - 3
        if image_size < 8 or 4 << steps != image_size:
            raise InversionError(f"DCGAN image_size must be a power of two >= 8, got {image_size}.")
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        top = width << (steps - 1)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, top * 16, bias=False), nn.BatchNorm1d(top * 16), nn.ReLU(True)
        )
        self.top = top
        layers: list[nn.Module] = []
        for i in range(steps - 1):
            c_in = top >> i
            layers += [
                nn.ConvTranspose2d(c_in, c_in // 2, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_in // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:  # noqa: D102
        return self.net(self.project(z).view(-1, self.top, 4, 4))


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Binary cross-entropy: real images to 1, generated ones to 0."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: Tensor) -> Tensor:
    """The non-saturating generator loss: generated images to 1."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def gan_optimizers(
    generator: nn.Module, discriminator: nn.Module, lr: float = 2e-4
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam with DCGAN's betas (0.5, 0.999) for the generator and the discriminator."""
    return (
        torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999)),
        torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999)),
    )


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    real: Tensor,
    z: Tensor,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    backward: Callable[[Tensor], None] | None = None,
) -> dict[str, Tensor]:
    """One DCGAN step: the discriminator on real vs generated, then the generator.

    Args:
        generator: G.
        discriminator: D.
        real: A batch of real images in [0, 1].
        z: Latent codes for the generated batch.
        optimizers: ``(generator optimiser, discriminator optimiser)``.
        backward: How to back-propagate a loss (default ``loss.backward()``; Lightning
            passes ``manual_backward``).

    Returns:
        ``{"d_loss", "g_loss"}`` (detached).
    """
    backward = backward or (lambda loss: loss.backward())
    opt_g, opt_d = optimizers
    fake = generator(z)
    d_loss = discriminator_loss(discriminator(real), discriminator(fake.detach()))
    opt_d.zero_grad(set_to_none=True)
    backward(d_loss)
    opt_d.step()
    g_loss = generator_loss(discriminator(fake))
    opt_g.zero_grad(set_to_none=True)
    backward(g_loss)
    opt_g.step()
    return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}


@dataclasses.dataclass(frozen=True)
class GANRecipe:
    """How ``digits:dcgan`` is trained (every field enters the cache key)."""

    seed: int = 0
    epochs: int = 20
    lr: float = 5e-4
    batch_size: int = 64
    latent_dim: int = 32
    width: int = 16
    image_size: int = 32
    channels: int = 1

    def key(self) -> str:
        """Short hash of the recipe and the file format."""
        text = json.dumps({"format": GAN_FORMAT, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]


DIGITS_GAN = GANRecipe()


def gan_hparams(recipe: GANRecipe) -> dict:
    """The hyperparameters a generator is rebuilt from (as the Lightning module saves them)."""
    return {
        "latent_dim": recipe.latent_dim,
        "width": recipe.width,
        "image_size": recipe.image_size,
        "channels": recipe.channels,
    }


def train_digits_gan(recipe: GANRecipe = DIGITS_GAN, progress: bool = True) -> dict:
    """Train a DCGAN on the digits training split; returns a checkpoint dict."""
    generator_rng = torch.Generator().manual_seed(recipe.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        generator = DCGANGenerator(
            recipe.latent_dim, recipe.channels, recipe.width, recipe.image_size
        )
        discriminator = ConvEncoder(1, recipe.channels, recipe.width, recipe.image_size)
    images, _ = load_digits_split("train", recipe.image_size, recipe.channels)
    optimizers = gan_optimizers(generator, discriminator, recipe.lr)
    epochs = range(recipe.epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(
            epochs, desc="training digits:dcgan (first use)", file=sys.stderr, leave=False
        )
    start = time.perf_counter()
    for _ in epochs:
        order = torch.randperm(len(images), generator=generator_rng)
        for begin in range(0, len(order) - recipe.batch_size + 1, recipe.batch_size):
            real = images[order[begin : begin + recipe.batch_size]]
            z = torch.randn(len(real), recipe.latent_dim, generator=generator_rng)
            gan_step(generator, discriminator, real, z, optimizers)
    return {
        "hyper_parameters": gan_hparams(recipe),
        "state_dict": {f"generator.{k}": v for k, v in generator.state_dict().items()},
        "gan": {
            "recipe": dataclasses.asdict(recipe),
            "train_seconds": time.perf_counter() - start,
            "torch": str(torch.__version__),
        },
    }


def digits_gan_path(recipe: GANRecipe = DIGITS_GAN) -> Path:
    """Where the cached ``digits:dcgan`` lives (it may not exist yet)."""
    return cache_dir() / "gan" / f"digits-dcgan-{recipe.key()}.pt"


def digits_gan_checkpoint(recipe: GANRecipe = DIGITS_GAN) -> dict:
    """The cached ``digits:dcgan`` checkpoint, trained on first use."""
    return cached_torch_file(digits_gan_path(recipe), lambda: train_digits_gan(recipe))


def generator_from_checkpoint(checkpoint: dict, name: str) -> DCGANGenerator:
    """Rebuild a generator from a checkpoint of ``DCGANModule`` (or the cached one)."""
    hp = checkpoint.get("hyper_parameters") or {}
    state = module_substate(checkpoint, "generator")
    if not state or "latent_dim" not in hp:
        raise InversionError(
            f"{name} is not a checkpoint of this project's DCGANModule (no generator weights "
            "and hyperparameters); train one with configs/digits/gan_inversion_dcgan.yaml."
        )
    generator = DCGANGenerator(hp["latent_dim"], hp["channels"], hp["width"], hp["image_size"])
    generator.load_state_dict(state)
    return generator


def build_generator(spec: str) -> DCGANGenerator:
    """A frozen generator: ``digits:dcgan`` (cached, trained on first use) or a checkpoint.

    The generator is in eval mode with gradients off (images still pass gradients to
    their latent codes).
    """
    if spec == "digits:dcgan":
        generator = generator_from_checkpoint(digits_gan_checkpoint(), spec)
    elif Path(spec).expanduser().is_file():
        generator = generator_from_checkpoint(load_checkpoint_file(spec), spec)
    else:
        raise InversionError(
            f"Unknown generator {spec!r}: use digits:dcgan (the embedded one) or the path of "
            "a DCGANModule checkpoint."
        )
    return generator.eval().requires_grad_(False)
