"""A DCGAN trained on a DataModule of real images (the generator that GAN inversion inverts)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from inversion import seeds
from inversion.gan_inversion import ConvEncoder
from inversion.gan_inversion.dcgan import DCGANGenerator, gan_optimizers, gan_step
from model_inversion.lightning_modules.base import BaseTask
from model_inversion.lightning_modules.strategies import require_unused_parameter_search


class DCGANModule(BaseTask):
    """Train a DCGAN generator G and discriminator D (non-saturating loss, Adam 0.5/0.999).

    The same networks, losses and optimisers as the cached ``digits:dcgan``
    (``inversion/gan_inversion/dcgan.py``); a checkpoint of this module is a generator spec for
    ``GANInversion`` (``generator: path/to.ckpt``). Validation/test steps return
    ``{"images": G(z)}`` for as many codes as the batch has images (seeded by batch), so
    ``ImageMetrics`` gives FID against the real images and ``ImageGrid`` shows samples.

    Args:
        latent_dim: Size of the latent code.
        width: Channels of the last hidden layer of G and the first of D.
        image_size: Side of the images (a power of two).
        channels: Image channels.
        lr: Adam learning rate of both networks.
        seed: Seed of the evaluation codes.
    """

    def __init__(
        self,
        latent_dim: int = 32,
        width: int = 16,
        image_size: int = 32,
        channels: int = 1,
        lr: float = 5e-4,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False

    def setup(self, stage: str) -> None:
        """Check the strategy: DDP must look for unused parameters (see below)."""
        if stage == "fit":
            require_unused_parameter_search(
                self.trainer.strategy,
                "DCGANModule",
                "the discriminator and generator steps each leave the other network idle",
            )

    def configure_models(self) -> None:  # noqa: D102
        hp = self.hparams
        self.generator = DCGANGenerator(hp.latent_dim, hp.channels, hp.width, hp.image_size)
        self.discriminator = ConvEncoder(1, hp.channels, hp.width, hp.image_size)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:  # noqa: D102
        return list(gan_optimizers(self.generator, self.discriminator, self.hparams.lr))

    def training_step(self, batch: Any, batch_idx: int) -> None:  # noqa: D102
        real = batch[0]
        z = torch.randn(len(real), self.hparams.latent_dim, device=real.device)
        losses = gan_step(
            self.generator,
            self.discriminator,
            real,
            z,
            tuple(self.optimizers()),
            backward=self.manual_backward,
        )
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=True)

    def _sample(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        n = len(batch[0])
        rng = seeds.generator(self.hparams.seed, batch_idx, self.global_rank)
        z = torch.randn(n, self.hparams.latent_dim, generator=rng).to(self.device)
        return {"images": self.generator(z)}

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._sample(batch, batch_idx)

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._sample(batch, batch_idx)
