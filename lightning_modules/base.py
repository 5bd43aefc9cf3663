"""The base of every LightningModule here: init args saved, then three build hooks."""

from __future__ import annotations

import lightning.pytorch as pl


class BaseTask(pl.LightningModule):
    """A LightningModule built in three hooks, after its init args are saved.

    Subclasses take plain, serialisable init args (spec strings, layer names, numbers),
    so YAML configs and ``load_from_checkpoint`` just work, and implement
    :meth:`configure_models`; :meth:`configure_losses` and :meth:`configure_metrics`
    are optional. The maths lives in ``inversion/``; a task only wires it.

    Args:
        ignore: Init args not to save as hyperparameters.
    """

    def __init__(self, ignore: list[str] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["ignore", *(ignore or [])])
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    def configure_models(self) -> None:
        """Build the networks from ``self.hparams``."""
        raise NotImplementedError

    def configure_losses(self) -> None:
        """Build the loss functions (optional)."""

    def configure_metrics(self) -> None:
        """Build the torchmetrics metrics (optional)."""
