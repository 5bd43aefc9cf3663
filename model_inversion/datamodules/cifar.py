"""CIFAR-10 (the robust-training reference data) from a local copy of the official files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from inversion.data.cifar import find_cifar10, load_cifar10
from inversion.data.digits import random_translate
from model_inversion.datamodules.in_memory import InMemoryDataModule

NUM_CLASSES = 10


def random_flip(images: Tensor) -> Tensor:
    """Flip each image horizontally with probability 1/2 (vectorised)."""
    flip = torch.rand(len(images), device=images.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


class Cifar10DataModule(InMemoryDataModule):
    """CIFAR-10: 50,000 training and 10,000 test images, 32 x 32 RGB in [0, 1].

    Reads the official "python version" files (``root/cifar-10-batches-py/``) with a
    safe unpickler; nothing is downloaded. Validation and test both use the test split
    (as the robustness library's reference numbers do). Batches are kept as uint8 in
    memory and turned into floats on the device, where training batches get the standard
    augmentation: a random crop with 4 pixels of zero padding (a random shift) and a
    random horizontal flip, vectorised over the batch.

    Args:
        root: Folder holding ``cifar-10-batches-py/`` (or that folder itself).
        batch_size: Batch size of every loader.
        augment: Random crop (padding 4) and flip of training batches.
        num_workers: DataLoader workers (the data is in memory).
    """

    num_classes = NUM_CLASSES
    stage_splits = {"train": "train", "val": "test", "test": "test", "predict": "test"}

    def __init__(
        self, root: str, batch_size: int = 128, augment: bool = True, num_workers: int = 0
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        find_cifar10(Path(root))  # a clear error now rather than at the first batch

    def load_split(self, split: str) -> tuple[Tensor, Tensor]:  # noqa: D102
        return load_cifar10(self.hparams.root, split)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Convert to floats in [0, 1] on the device; augment training batches."""
        images, labels = batch
        images = images.float().div_(255)
        trainer = self.trainer
        if self.hparams.augment and trainer is not None and trainer.training:
            images = random_flip(random_translate(images, 4))
        return [images, labels]
