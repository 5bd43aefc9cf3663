"""The base of the DataModules here: their saved init args, typed for attribute access."""

from __future__ import annotations

from typing import cast

import lightning.pytorch as pl
from lightning.fabric.utilities.data import AttributeDict


class BaseDataModule(pl.LightningDataModule):
    """A LightningDataModule whose ``hparams`` read as attributes (``self.hparams.seed``).

    Lightning types ``hparams`` as ``AttributeDict | MutableMapping``; after
    ``save_hyperparameters()`` it is always an ``AttributeDict``.
    """

    @property
    def hparams(self) -> AttributeDict:  # type: ignore[override]
        """The saved init args, read as attributes."""
        return cast(AttributeDict, super().hparams)
