"""Latent codes for generator inversion: step-indexed training batches, fixed held-out ones."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from inversion.errors import InversionError
from inversion.seeds import derive_seed
from model_inversion.datamodules.base import BaseDataModule
from model_inversion.datamodules.layerwise import StepSampler
from model_inversion.datamodules.sampling import world_and_rank

HELD_OUT = 999_983  # seeds of the held-out codes: derive_seed(seed, HELD_OUT + split)


class LatentBatches(Dataset):
    """Item s is a batch of N(0, I) codes, seeded by (seed, s): the same on every run."""

    def __init__(self, latent_dim: int, batch_size: int, length: int, seed: int) -> None:
        self.latent_dim, self.batch_size, self.length, self.seed = (
            latent_dim,
            batch_size,
            length,
            seed,
        )

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: int) -> Tensor:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, item))
        return torch.randn(self.batch_size, self.latent_dim, generator=generator)


class LatentCodesDataModule(BaseDataModule):
    """Gaussian latent codes: one training batch per step, and held-out codes to evaluate.

    A generator-inversion module trains only on these (it generates the images itself),
    so no real image is ever a training input. A module with a schedule sets
    :attr:`steps`; a resumed run continues at its global step.

    Args:
        latent_dim: Size of the codes (the generator's).
        batch_size: Codes per batch.
        steps: Training batches, when no module sets them.
        num_val: Held-out codes for validation and test (another seed).
        seed: Base seed.
    """

    def __init__(
        self,
        latent_dim: int = 32,
        batch_size: int = 64,
        steps: int = 1000,
        num_val: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if min(latent_dim, batch_size, num_val) < 1:
            raise InversionError("latent_dim, batch_size and num_val must be at least 1.")
        # a module with a schedule overrides steps: not a hyperparameter of the data
        self.save_hyperparameters(ignore=["steps"])
        self.steps = steps

    def set_schedule(self, steps: int) -> None:
        """Make one training epoch a schedule of ``steps`` steps (a module with one calls it)."""
        self.steps = steps

    def train_dataloader(self) -> DataLoader:  # noqa: D102
        hp = self.hparams
        _, rank = world_and_rank()
        seed = derive_seed(hp.seed, rank)
        dataset = LatentBatches(hp.latent_dim, hp.batch_size, self.steps, seed)
        start = self.trainer.global_step if self.trainer is not None else 0
        return DataLoader(dataset, batch_size=None, sampler=StepSampler(dataset, start))

    def _held_out(self, offset: int) -> DataLoader:
        hp = self.hparams
        generator = torch.Generator().manual_seed(derive_seed(hp.seed, HELD_OUT + offset))
        codes = torch.randn(hp.num_val, hp.latent_dim, generator=generator)
        # a tensor is a map-style dataset (rows by index, a length); torch types a Dataset
        return DataLoader(cast(Dataset, codes), batch_size=hp.batch_size)

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._held_out(1)

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self._held_out(2)
