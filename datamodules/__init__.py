"""Real and synthetic DataModules; every image is a float tensor in [0, 1]."""

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
