"""Real and synthetic DataModules; every image is a float tensor in [0, 1]."""

from datamodules.cifar import Cifar10DataModule
from datamodules.digits import DigitsDataModule
from datamodules.image_folder import ImageFolderDataModule, ImageFolderDataset, scan_image_folder
from datamodules.latents import LatentsDataModule
from datamodules.proxy import ProxyDataModule
from datamodules.sampling import ShardedSampler
from datamodules.synthetic import ClassTargetsDataModule, NoiseDataModule

__all__ = [
    "Cifar10DataModule",
    "ClassTargetsDataModule",
    "DigitsDataModule",
    "ImageFolderDataModule",
    "ImageFolderDataset",
    "LatentsDataModule",
    "NoiseDataModule",
    "ProxyDataModule",
    "ShardedSampler",
    "scan_image_folder",
]
