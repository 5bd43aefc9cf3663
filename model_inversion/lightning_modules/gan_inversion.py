"""GAN inversion as a LightningModule: an encoder trained only on generated pairs."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor
from torchmetrics import MeanMetric

from inversion import seeds
from inversion.errors import InversionError
from inversion.gan_inversion import (
    ConvEncoder,
    DCGANGenerator,
    EncoderWeights,
    build_generator,
    encoder_loss,
    inversion_metrics,
    new_encoder,
)
from model_inversion.datamodules.gan_inversion import LatentBatches
from model_inversion.lightning_modules.base import BaseTask

METRICS = ("latent_mse", "latent_cosine", "psnr_corrupted", "psnr_repaired")


class GANInversion(BaseTask):
    """Train an encoder E with G(E(x)) = x on pairs (z, G(z)) of a frozen generator.

    The Lightning shell of ``inversion.gan_inversion.train_encoder``: the same encoder
    (initialised from ``seed``), loss and Adam steps, on the DataModule's codes.
    Pairs with ``LatentCodesDataModule`` (codes only: the images are generated here, so no
    real image is a training input; anything else is refused). Validation/test on held-out
    codes log ``latent_mse``, ``latent_cosine`` (E(G(z)) against z), ``psnr_corrupted``
    and ``psnr_repaired`` (a damaged G(z) re-generated from its recovered code), and
    return ``{"images": G(E(G(z))), "originals": G(z), "depths": {"corrupted",
    "repaired", "reconstructed"}}`` so that ``ImageMetrics`` gives PSNR/SSIM of the
    reconstruction and ``DepthGrid`` shows original | corrupted | repaired |
    reconstructed. A test on real images (``--data DigitsDataModule``) projects them
    onto the generator: G(E(x)) against x.

    Args:
        generator: ``digits:dcgan`` (cached, trained on first use) or a ``DCGANModule``
            checkpoint (frozen; not saved in checkpoints).
        width: Channels of the encoder's first convolution.
        steps: Training steps.
        lr: Adam learning rate.
        loss_weights: ``latent`` and ``cycle`` (see ``EncoderWeights``).
        patch: Side of the noise square that damages images for the repair metric.
        seed: Seed of the encoder's initialisation and of the damage.
    """

    generator: DCGANGenerator  # attached frozen (attach_frozen): not a submodule

    def __init__(
        self,
        generator: str = "digits:dcgan",
        width: int = 32,
        steps: int = 2000,
        lr: float = 1e-3,
        loss_weights: dict[str, float] | None = None,
        patch: int = 12,
        seed: int = 0,
    ) -> None:
        super().__init__()

    def configure_models(self) -> None:  # noqa: D102
        hp = self.hparams
        generator = build_generator(hp.generator)
        self.attach_frozen("generator", generator)  # frozen: never saved
        self.encoder: ConvEncoder = new_encoder(generator, hp.width, hp.seed)
        self.loss_weights = EncoderWeights.from_dict(hp.loss_weights)

    def configure_metrics(self) -> None:  # noqa: D102
        self.metrics = torch.nn.ModuleDict({name: MeanMetric() for name in METRICS})

    def setup(self, stage: str) -> None:
        """Size the codes' loader to ``steps``; check the code size."""
        datamodule = getattr(self.trainer, "datamodule", None)
        latent_dim = getattr(getattr(datamodule, "hparams", None), "latent_dim", None)
        if latent_dim is not None and latent_dim != self.generator.latent_dim:
            raise InversionError(
                f"The generator takes {self.generator.latent_dim}-d codes; set the "
                f"LatentCodesDataModule's latent_dim to it (got {latent_dim})."
            )
        super().setup(stage)

    def training_schedule(self) -> int:
        """``steps`` batches of generated pairs."""
        return self.hparams.steps

    def on_train_start(self) -> None:
        """Train on generated pairs only: the loader must hold latent codes."""
        super().on_train_start()
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if type(dataset) is not LatentBatches:
            raise InversionError(
                "GANInversion trains only on pairs (z, G(z)) it generates: use "
                f"LatentCodesDataModule for training (got a {type(dataset).__name__}); real images "
                "may be used for testing only."
            )

    def configure_optimizers(self) -> torch.optim.Optimizer:  # noqa: D102
        return torch.optim.Adam(self.encoder.parameters(), lr=self.hparams.lr)

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:  # noqa: D102
        loss, parts = encoder_loss(self.encoder, self.generator, batch, self.loss_weights)
        self.log_dict({f"train/{k}": v for k, v in parts.items()})
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        if isinstance(batch, (list, tuple)):  # real images: project onto the generator
            images = batch[0]
            with torch.no_grad():
                projected = self.generator(self.encoder(images))
            return {"images": projected, "originals": images}
        rng = seeds.generator(self.hparams.seed, batch_idx, self.global_rank)
        metrics, images = inversion_metrics(
            self.encoder, self.generator, batch, self.hparams.patch, rng
        )
        for name in METRICS:
            cast(MeanMetric, self.metrics[name]).update(metrics[name])  # ModuleDict: a Module
        return {
            "images": images["reconstructed"],
            "originals": images["original"],
            "depths": {k: images[k] for k in ("corrupted", "repaired", "reconstructed")},
        }

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:  # noqa: D102
        return self._evaluate(batch, batch_idx)

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:  # noqa: D102
        return self._evaluate(batch, batch_idx)

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        self.log_and_reset("val", self.metrics)

    def on_test_epoch_end(self) -> None:  # noqa: D102
        self.log_and_reset("test", self.metrics)
