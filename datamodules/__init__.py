"""Real and synthetic DataModules; every image is a float tensor in [0, 1].

Shared: digits, CIFAR-10, image folders, noise. A family's own DataModule carries its
name: ``class_inversion.py`` (class targets), ``layerwise.py`` (synthetic images),
``gan_inversion.py`` (latent codes), ``conditioned_generator.py`` (latents),
``dominant_patterns.py`` (proxy data). A module with a fixed schedule tells its DataModule
the length through ``set_schedule(steps)``.
"""

from datamodules.cifar import Cifar10DataModule
from datamodules.class_inversion import ClassTargetsDataModule
from datamodules.conditioned_generator import LatentsDataModule
from datamodules.digits import DigitsDataModule
from datamodules.dominant_patterns import ProxyDataModule
from datamodules.gan_inversion import LatentCodesDataModule
from datamodules.image_folder import ImageFolderDataModule, ImageFolderDataset, scan_image_folder
from datamodules.layerwise import SyntheticImagesDataModule, check_synthetic_training
from datamodules.noise import NoiseDataModule
from datamodules.sampling import ShardedSampler

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
