"""Pure-PyTorch maths of model inversion; never imports lightning.

Image convention everywhere: float tensors in [0, 1], N x C x H x W. Classifiers carry
their own input normalisation (see :class:`inversion.models.ImageClassifier`).
"""

from inversion.errors import InversionError
from inversion.models import ImageClassifier, build_classifier

__all__ = ["ImageClassifier", "InversionError", "build_classifier"]
