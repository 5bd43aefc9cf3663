"""The embedded benchmark data as a LightningDataModule."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from inversion.data.digits import NUM_CLASSES, load_digits_split, random_translate
from model_inversion.datamodules.in_memory import InMemoryDataModule


class DigitsDataModule(InMemoryDataModule):
    """scikit-learn's 8x8 digits, resized, with a fixed seeded train/val/test split.

    1,257 / 180 / 360 images; labels 0..9; images in [0, 1] (the models normalise).
    Nothing is downloaded: the data ships inside scikit-learn.

    Args:
        image_size: Side length of the resized images.
        channels: 1 (grayscale) or 3 (replicated gray).
        batch_size: Batch size of every loader.
        max_shift: Random translation (pixels, each direction) of training batches;
            0 turns augmentation off.
        num_workers: DataLoader workers (the data is tiny and in memory).
    """

    num_classes = NUM_CLASSES

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        batch_size: int = 64,
        max_shift: int = 2,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        load_digits_split("val", image_size, channels)  # validates the arguments early

    def load_split(self, split: str) -> tuple[Tensor, Tensor]:  # noqa: D102
        return load_digits_split(split, self.hparams.image_size, self.hparams.channels)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Randomly translate training batches on the device (vectorised)."""
        trainer = self.trainer
        if trainer is not None and trainer.training and self.hparams.max_shift > 0:
            images, labels = batch
            batch = [random_translate(images, self.hparams.max_shift), labels]
        return batch
