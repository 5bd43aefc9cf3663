"""GAN generator inversion: an encoder E with G(E(x)) = x, trained on generated pairs only.

``dcgan.py`` holds the DCGAN (and the cached ``digits:dcgan``), ``encoder.py`` the
encoder, its losses, the repair metrics and the plain-PyTorch loop :func:`train_encoder`.

Wiring: ``model_inversion/lightning_modules/gan_inversion.py`` (``GANInversion``),
``model_inversion/lightning_modules/gan_inversion_dcgan.py`` (``DCGANModule``) and
``model_inversion/datamodules/gan_inversion.py`` (``LatentCodesDataModule``); configs
``configs/digits/gan_inversion*.yaml``; table ``benchmarks/gan_inversion_table.py``
(``python -m benchmarks.gan_inversion_table``).
"""

from inversion.gan_inversion.dcgan import (
    DIGITS_GAN,
    DCGANGenerator,
    GANRecipe,
    build_generator,
    digits_gan_checkpoint,
    gan_step,
    generator_from_checkpoint,
    train_digits_gan,
)
from inversion.gan_inversion.encoder import (
    ConvEncoder,
    EncoderWeights,
    corrupt,
    encoder_loss,
    inversion_metrics,
    latent_stream,
    new_encoder,
    train_encoder,
)

__all__ = [
    "ConvEncoder",
    "DCGANGenerator",
    "DIGITS_GAN",
    "EncoderWeights",
    "GANRecipe",
    "build_generator",
    "corrupt",
    "digits_gan_checkpoint",
    "encoder_loss",
    "gan_step",
    "generator_from_checkpoint",
    "inversion_metrics",
    "latent_stream",
    "new_encoder",
    "train_digits_gan",
    "train_encoder",
]
