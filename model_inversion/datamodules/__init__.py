"""Real and synthetic DataModules; every image is a float tensor in [0, 1].

Shared: digits, CIFAR-10, image folders, noise. A family's own DataModule carries its
name: ``class_inversion.py`` (class targets), ``layerwise.py`` (synthetic images),
``gan_inversion.py`` (latent codes), ``conditioned_generator.py`` (latents),
``dominant_patterns.py`` (proxy data). A module with a fixed schedule tells its DataModule
the length through ``set_schedule(steps)``.
"""

from model_inversion.datamodules.cifar import Cifar10DataModule
from model_inversion.datamodules.class_inversion import ClassTargetsDataModule
from model_inversion.datamodules.conditioned_generator import LatentsDataModule
from model_inversion.datamodules.digits import DigitsDataModule
from model_inversion.datamodules.dominant_patterns import ProxyDataModule
from model_inversion.datamodules.gan_inversion import LatentCodesDataModule
from model_inversion.datamodules.image_folder import (
    ImageFolderDataModule,
    ImageFolderDataset,
    scan_image_folder,
)
from model_inversion.datamodules.layerwise import (
    SyntheticImagesDataModule,
    check_synthetic_training,
)
from model_inversion.datamodules.noise import NoiseDataModule
from model_inversion.datamodules.sampling import ShardedSampler

__all__ = [
    "Cifar10DataModule",
    "ClassTargetsDataModule",
    "DigitsDataModule",
    "ImageFolderDataModule",
    "ImageFolderDataset",
    "LatentCodesDataModule",
    "LatentsDataModule",
    "NoiseDataModule",
    "ProxyDataModule",
    "ShardedSampler",
    "SyntheticImagesDataModule",
    "check_synthetic_training",
    "scan_image_folder",
]
