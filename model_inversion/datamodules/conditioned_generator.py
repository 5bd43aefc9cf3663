"""(latent, label) draws for training a conditioned generator: synthetic, seeded, DDP-aware.

Every item is a whole batch ``{"latent": B x D, "label": B, "noise": B x K}``: standard
normal latents, label-balanced classes (counts differ by at most one) and the random part
of the hidden label encodings (the soft vector's noise), drawn together from one seed.

- Training: ``batches_per_epoch`` fresh batches per epoch and process. Batch ``b`` of
  epoch ``e`` on rank ``r`` of ``W`` is ``train_batch(seed, e * batches_per_epoch + b,
  ..., r, W)`` of ``inversion.conditioned_generator`` (the draws of its plain loop
  ``train_generator``), so processes never share a draw and a run is reproducible.
  The loader is resumable:
  its position is saved in checkpoints, so a run resumed mid-epoch draws the same
  batches as an uninterrupted one.
- Validation and test: ``val_per_class`` / ``test_per_class`` draws of every class, fixed
  (drawn once from their own seeds, identical every epoch so metrics are comparable) and
  dealt to the processes without duplicates; each item also carries ``index``.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import cast

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from inversion.conditioned_generator import fixed_draws, train_batch
from inversion.errors import InversionError
from model_inversion.datamodules.base import BaseDataModule
from model_inversion.datamodules.class_inversion import rank_batches
from model_inversion.datamodules.sampling import (
    EpochSampler,
    ResumableLoader,
    ShardedSampler,
    world_and_rank,
)


class TrainBatches(Dataset):
    """Item ``key = epoch * length + b`` is training batch ``b`` of that epoch on this rank."""

    def __init__(
        self, length: int, batch_size: int, latent_dim: int, num_classes: int, seed: int
    ) -> None:
        self.length, self.batch_size = length, batch_size
        self.latent_dim, self.num_classes, self.seed = latent_dim, num_classes, seed
        self.world, self.rank = world_and_rank()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int) -> dict[str, Tensor]:
        return train_batch(
            self.seed,
            key,
            self.batch_size,
            self.latent_dim,
            self.num_classes,
            self.rank,
            self.world,
        )


class EpochKeys(EpochSampler):
    """Yields the keys of one epoch (``epoch * length + b``); a resumed epoch skips its prefix."""

    def order(self, position: dict[str, int] | None) -> list[int]:  # noqa: D102
        length = len(cast(Sized, self.dataset))
        return list(range(self.epoch * length, (self.epoch + 1) * length))


class FixedDraws(Dataset):
    """Pre-drawn samples dealt in batches: item i is ``{"latent", "label", "noise", "index"}``."""

    def __init__(self, draws: dict[str, Tensor], batches: list[list[int]]) -> None:
        self.draws, self.batches = draws, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, item: int) -> dict[str, Tensor]:
        index = torch.tensor(self.batches[item], dtype=torch.long)
        return {**{k: v[index] for k, v in self.draws.items()}, "index": index}


class LatentsDataModule(BaseDataModule):
    """Synthetic (latent, label) batches for a conditioned generator.

    ``num_classes`` and ``latent_dim`` default to the model's (a generator module fills
    them in at set-up); given explicitly they must match it.

    Args:
        num_classes: Classes of the target classifier (default: the model's).
        latent_dim: Size of the latent (default: the model's).
        batch_size: Samples per batch and process.
        batches_per_epoch: Training batches per epoch and process.
        val_per_class: Validation samples of every class (fixed draws).
        test_per_class: Test samples of every class (fixed draws, other seeds).
        seed: Base seed of every draw.
        num_workers: DataLoader workers of the training loader (draws are cheap: 0).
    """

    def __init__(
        self,
        num_classes: int | None = None,
        latent_dim: int | None = None,
        batch_size: int = 64,
        batches_per_epoch: int = 100,
        val_per_class: int = 10,
        test_per_class: int = 10,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or batches_per_epoch < 1 or val_per_class < 1 or test_per_class < 1:
            raise InversionError(
                "batch_size, batches_per_epoch, val_per_class and test_per_class must be >= 1."
            )
        # the sizes are the model's (logged with its hyperparameters), not saved twice
        self.save_hyperparameters(ignore=["num_classes", "latent_dim"])
        self.num_classes, self.latent_dim = num_classes, latent_dim

    def configure(self, num_classes: int, latent_dim: int) -> None:
        """Take the model's sizes (an explicit, different value is an error)."""
        for name, value in (("num_classes", num_classes), ("latent_dim", latent_dim)):
            given = getattr(self, name)
            if given is not None and given != value:
                raise InversionError(
                    f"data {name}={given} does not match the model's {name}={value}; "
                    f"remove data.{name} (it defaults to the model's) or make them equal."
                )
            setattr(self, name, value)

    def _sizes(self) -> tuple[int, int]:
        if self.num_classes is None or self.latent_dim is None:
            raise InversionError(
                "LatentsDataModule needs num_classes and latent_dim: give them, or pair it "
                "with a generator module (which fills them in)."
            )
        return self.num_classes, self.latent_dim

    def train_dataloader(self) -> DataLoader:  # noqa: D102
        num_classes, latent_dim = self._sizes()
        hp = self.hparams
        dataset = TrainBatches(
            hp.batches_per_epoch, hp.batch_size, latent_dim, num_classes, hp.seed
        )
        return ResumableLoader(dataset, EpochKeys(dataset), num_workers=hp.num_workers)

    def fixed_draws(self, split: str) -> dict[str, Tensor]:
        """All samples of the validation or test split (the same every call)."""
        num_classes, latent_dim = self._sizes()
        per_class = self.hparams.val_per_class if split == "val" else self.hparams.test_per_class
        return fixed_draws(self.hparams.seed, split, per_class, latent_dim, num_classes)

    def _fixed_loader(self, split: str) -> DataLoader:
        draws = self.fixed_draws(split)
        world, rank = world_and_rank()
        batches = rank_batches(len(draws["label"]), self.hparams.batch_size, world, rank)
        dataset = FixedDraws(draws, batches)
        # already sharded: a one-replica ShardedSampler keeps Lightning's sampler away
        sampler = ShardedSampler(dataset, num_replicas=1, rank=0)
        return DataLoader(dataset, batch_size=None, sampler=sampler)

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._fixed_loader("val")

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self._fixed_loader("test")

    def predict_dataloader(self) -> DataLoader:  # noqa: D102
        return self._fixed_loader("test")
