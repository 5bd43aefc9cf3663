"""Pure-PyTorch maths of model inversion; never imports lightning.

One package per family, each re-exporting its API and naming its plain-PyTorch entry
point: ``class_inversion`` (PII, DeepInversion, DeepDream), ``robust_prior``
(representation tools), ``layerwise`` (zero-shot inverter stacks), ``gan_inversion``,
``conditioned_generator`` and ``dominant_patterns``. Shared: ``models`` (specs, wrapper,
taps, splitting, zoo), ``data``, generic ``metrics``, ``attacks`` (PGD), ``priors``,
``training``, ``schedules``, ``seeds`` and ``visual``.

Image convention everywhere: float tensors in [0, 1], N x C x H x W. Classifiers carry
their own input normalisation (see :class:`inversion.models.ImageClassifier`).
"""

from inversion.errors import InversionError
from inversion.models import ImageClassifier, build_classifier

__all__ = ["ImageClassifier", "InversionError", "build_classifier"]
