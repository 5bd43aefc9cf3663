"""Real images scored like produced ones: the reference row of every results table."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from model_inversion.lightning_modules.base import BaseTask


class RealImages(BaseTask):
    """Return a DataModule's own images from ``validation_step``/``test_step``.

    Scoring real images with the same callbacks as an inversion method gives the
    upper bound of verifier accuracy, IS and FID on that data (e.g. the digits test
    split). It has nothing to train: run it with ``validate`` or ``test``.
    """

    def __init__(self) -> None:
        super().__init__()

    def configure_models(self) -> None:
        """Nothing to build."""

    def _produce(self, batch: Any) -> dict[str, Tensor]:
        images, labels = batch[0], batch[1]
        return {"images": images, "labels": labels}

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._produce(batch)

    def test_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:  # noqa: D102
        return self._produce(batch)
