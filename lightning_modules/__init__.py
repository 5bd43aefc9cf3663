"""One LightningModule per approach; wiring only, the maths lives in ``inversion/<family>/``.

Files carry their family's name (``class_inversion.py``, ``robust_prior_training.py``,
``robust_prior_tools.py``, ``layerwise.py``, ``gan_inversion.py``,
``gan_inversion_dcgan.py``, ``conditioned_generator.py``, ``dominant_patterns.py``);
``base.py`` holds the plumbing they share (``BaseTask``, ``TargetTask``).
"""

from lightning_modules import strategies  # noqa: F401  (registers ddp_independent)
from lightning_modules.base import BaseTask
from lightning_modules.class_inversion import ClassInversion
from lightning_modules.classifier import ClassifierModule
from lightning_modules.conditioned_generator import ConditionedGeneratorInversion
from lightning_modules.dominant_patterns import DominantPatterns
from lightning_modules.gan_inversion import GANInversion
from lightning_modules.gan_inversion_dcgan import DCGANModule
from lightning_modules.layerwise import LayerwiseInversion
from lightning_modules.real_images import RealImages
from lightning_modules.robust_prior_tools import RepresentationTools
from lightning_modules.robust_prior_training import RobustClassifierModule

__all__ = [
    "BaseTask",
    "ClassInversion",
    "ClassifierModule",
    "ConditionedGeneratorInversion",
    "DCGANModule",
    "DominantPatterns",
    "GANInversion",
    "LayerwiseInversion",
    "RealImages",
    "RepresentationTools",
    "RobustClassifierModule",
]
