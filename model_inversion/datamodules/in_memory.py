"""The base of DataModules whose splits are tensors in memory (digits, CIFAR-10)."""

from __future__ import annotations

from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from model_inversion.datamodules.base import BaseDataModule
from model_inversion.datamodules.sampling import ResumableLoader, ResumableShuffle, world_and_rank


class InMemoryDataModule(BaseDataModule):
    """Splits held as ``(images, labels)`` tensors; one loader per stage.

    The training loader shuffles every epoch and, in one process, resumes mid-epoch: a
    run resumed from a checkpoint taken inside an epoch gets the batches it had left
    (``ResumableLoader``). Subclasses implement :meth:`load_split` and may map
    the stages to other splits with :attr:`stage_splits` (e.g. validation on the test
    split). They save ``batch_size`` and ``num_workers`` as hyperparameters.
    """

    stage_splits = {"train": "train", "val": "val", "test": "test", "predict": "test"}

    def __init__(self) -> None:
        super().__init__()
        self.datasets: dict[str, TensorDataset] = {}

    def load_split(self, split: str) -> tuple[Tensor, Tensor]:
        """Images and labels of one split."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:  # noqa: D102
        for split in sorted(set(self.stage_splits.values())):
            if split not in self.datasets:
                self.datasets[split] = TensorDataset(*self.load_split(split))

    def _loader(self, stage: str) -> DataLoader:
        self.setup()
        shuffle = stage == "train"
        dataset = self.datasets[self.stage_splits[stage]]
        if shuffle and world_and_rank()[0] == 1:  # under DDP Lightning shards and shuffles
            sampler = ResumableShuffle(dataset)
            return ResumableLoader(
                dataset, sampler, self.hparams.batch_size, self.hparams.num_workers
            )
        return DataLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader("predict")
