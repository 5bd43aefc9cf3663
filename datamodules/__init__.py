"""Real and synthetic DataModules; every image is a float tensor in [0, 1]."""

from datamodules.cifar import Cifar10DataModule
from datamodules.digits import DigitsDataModule
from datamodules.image_folder import ImageFolderDataModule, ImageFolderDataset, scan_image_folder
from datamodules.latent_codes import LatentCodesDataModule
from datamodules.latents import LatentsDataModule
from datamodules.proxy import ProxyDataModule
from datamodules.sampling import ShardedSampler
from datamodules.synthetic import ClassTargetsDataModule, NoiseDataModule
from datamodules.synthetic_images import SyntheticImagesDataModule, check_synthetic_training

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
