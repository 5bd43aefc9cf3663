"""One LightningModule per approach; wiring only, the maths lives in ``inversion/``."""

from lightning_modules.base import BaseTask
from lightning_modules.classifier import ClassifierModule

__all__ = ["BaseTask", "ClassifierModule"]
