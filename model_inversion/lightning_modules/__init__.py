"""One LightningModule per approach; wiring only, the maths lives in ``inversion/<family>/``.

Files carry their family's name (``class_inversion.py``, ``robust_prior_training.py``,
``robust_prior_tools.py``, ``layerwise.py``, ``gan_inversion.py``,
``gan_inversion_dcgan.py``, ``conditioned_generator.py``, ``dominant_patterns.py``);
``base.py`` holds the plumbing they share (``BaseTask``, ``TargetTask``).
"""

from model_inversion.lightning_modules import strategies  # noqa: F401  (registers ddp_independent)
from model_inversion.lightning_modules.base import BaseTask
from model_inversion.lightning_modules.class_inversion import ClassInversion
from model_inversion.lightning_modules.classifier import ClassifierModule
from model_inversion.lightning_modules.conditioned_generator import ConditionedGeneratorInversion
from model_inversion.lightning_modules.dominant_patterns import DominantPatterns
from model_inversion.lightning_modules.gan_inversion import GANInversion
from model_inversion.lightning_modules.gan_inversion_dcgan import DCGANModule
from model_inversion.lightning_modules.layerwise import LayerwiseInversion
from model_inversion.lightning_modules.real_images import RealImages
from model_inversion.lightning_modules.robust_prior_tools import RepresentationTools
from model_inversion.lightning_modules.robust_prior_training import RobustClassifierModule

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
