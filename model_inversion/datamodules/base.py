"""The base of the DataModules here: their saved init args, typed and checked."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, cast

import lightning.pytorch as pl
from lightning.fabric.utilities.data import AttributeDict

from inversion.errors import InversionError

# init args every loader-building DataModule may take, and their smallest valid value
LOADER_ARG_MINIMA = {"batch_size": 1, "num_workers": 0}


def check_loader_args(hparams: AttributeDict) -> None:
    """Refuse a ``batch_size`` below 1 or a ``num_workers`` below 0, before any loader.

    Raises:
        InversionError: Naming the argument and its smallest valid value.
    """
    for name, smallest in LOADER_ARG_MINIMA.items():
        value = hparams.get(name)
        if isinstance(value, int) and value < smallest:
            raise InversionError(
                f"data {name} must be at least {smallest}, got {value}; set "
                f"--data.init_args.{name} (or data.init_args.{name} in the config)."
            )


class BaseDataModule(pl.LightningDataModule):
    """A LightningDataModule whose ``hparams`` read as attributes (``self.hparams.seed``).

    Lightning types ``hparams`` as ``AttributeDict | MutableMapping``; after
    ``save_hyperparameters()`` it is always an ``AttributeDict``. Saving them also checks
    the loader arguments every DataModule shares (:func:`check_loader_args`), so a batch
    size of 0 is one clear error at construction, not a traceback at the first loader.
    """

    @property
    def hparams(self) -> AttributeDict:  # type: ignore[override]
        """The saved init args, read as attributes."""
        return cast(AttributeDict, super().hparams)

    def save_hyperparameters(
        self,
        *args: Any,
        ignore: Sequence[str] | str | None = None,
        frame: Any = None,
        logger: bool = True,
    ) -> None:
        """Save the init args as Lightning does, then check the shared loader args."""
        if frame is None:
            current = inspect.currentframe()
            frame = current.f_back if current is not None else None
        super().save_hyperparameters(*args, ignore=ignore, frame=frame, logger=logger)
        check_loader_args(self.hparams)
