"""Pure-PyTorch maths of model inversion; never imports lightning.

One package per family, each re-exporting its API and naming its plain-PyTorch entry
point: ``class_inversion`` (PII, DeepInversion, DeepDream), ``robust_prior``
(representation tools), ``layerwise`` (zero-shot inverter stacks), ``gan_inversion``,
``conditioned_generator`` and ``dominant_patterns``. Shared: ``models`` (specs, wrapper,
taps, splitting, zoo), ``data``, generic ``metrics``, ``attacks`` (PGD), ``priors``,
``training``, ``schedules``, ``seeds`` and ``visual``.

The main names of every family are also available here (``from inversion import PGD,
build_classifier, find_pattern``); each is imported on first use, so ``import inversion``
stays cheap. The full API of a family is in its package.

Image convention everywhere: float tensors in [0, 1], N x C x H x W. Classifiers carry
their own input normalisation (see :class:`inversion.models.ImageClassifier`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from inversion.errors import InversionError

if TYPE_CHECKING:
    from inversion.attacks import PGD, pgd
    from inversion.class_inversion import ClassInverter, Recipe, recipe_from
    from inversion.conditioned_generator import (
        ConditionedGenerator,
        GeneratorRecipe,
        adversarial_samples,
        train_generator,
    )
    from inversion.data.digits import load_digits_split
    from inversion.dominant_patterns import (
        PatternObjective,
        UniversalPattern,
        find_pattern,
        random_pattern,
        score_pattern,
        transfer_matrix,
    )
    from inversion.gan_inversion import build_generator, new_encoder, train_encoder
    from inversion.layerwise import (
        ComposedInverter,
        InverterStack,
        LossWeights,
        Schedule,
        export_inverter,
        load_exported_inverter,
        train_stack,
    )
    from inversion.metrics import FrechetDistance, InceptionScore
    from inversion.metrics.reconstruction import psnr, ssim
    from inversion.metrics.scorer import ImageScorer
    from inversion.models import ImageClassifier, build_classifier, tap_features
    from inversion.models.split import ClassifierBlocks, split_classifier
    from inversion.priors import BatchNormStatistics, total_variation_l2
    from inversion.robust_prior import (
        apply_tool,
        gray_seeds,
        interpolate_representations,
        invert_representation,
        manipulate_features,
        representation,
        tool_attack,
        visualize_features,
    )

# public name -> the module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    # classifiers
    "ImageClassifier": "inversion.models",
    "build_classifier": "inversion.models",
    "tap_features": "inversion.models",
    "split_classifier": "inversion.models.split",
    "ClassifierBlocks": "inversion.models.split",
    # data
    "load_digits_split": "inversion.data.digits",
    # shared components
    "PGD": "inversion.attacks",
    "pgd": "inversion.attacks",
    "BatchNormStatistics": "inversion.priors",
    "total_variation_l2": "inversion.priors",
    # class inversion
    "ClassInverter": "inversion.class_inversion",
    "Recipe": "inversion.class_inversion",
    "recipe_from": "inversion.class_inversion",
    # robust prior
    "apply_tool": "inversion.robust_prior",
    "invert_representation": "inversion.robust_prior",
    "visualize_features": "inversion.robust_prior",
    "manipulate_features": "inversion.robust_prior",
    "interpolate_representations": "inversion.robust_prior",
    "representation": "inversion.robust_prior",
    "tool_attack": "inversion.robust_prior",
    "gray_seeds": "inversion.robust_prior",
    # layer-wise inversion
    "InverterStack": "inversion.layerwise",
    "ComposedInverter": "inversion.layerwise",
    "train_stack": "inversion.layerwise",
    "export_inverter": "inversion.layerwise",
    "load_exported_inverter": "inversion.layerwise",
    "Schedule": "inversion.layerwise",
    "LossWeights": "inversion.layerwise",
    # GAN inversion
    "build_generator": "inversion.gan_inversion",
    "new_encoder": "inversion.gan_inversion",
    "train_encoder": "inversion.gan_inversion",
    # conditioned generator
    "ConditionedGenerator": "inversion.conditioned_generator",
    "GeneratorRecipe": "inversion.conditioned_generator",
    "train_generator": "inversion.conditioned_generator",
    "adversarial_samples": "inversion.conditioned_generator",
    # dominant patterns
    "UniversalPattern": "inversion.dominant_patterns",
    "find_pattern": "inversion.dominant_patterns",
    "score_pattern": "inversion.dominant_patterns",
    "transfer_matrix": "inversion.dominant_patterns",
    "PatternObjective": "inversion.dominant_patterns",
    "random_pattern": "inversion.dominant_patterns",
    # metrics
    "ImageScorer": "inversion.metrics.scorer",
    "FrechetDistance": "inversion.metrics",
    "InceptionScore": "inversion.metrics",
    "psnr": "inversion.metrics.reconstruction",
    "ssim": "inversion.metrics.reconstruction",
}

__all__ = [  # InversionError, then the names of _LAZY
    "InversionError",
    "ImageClassifier",
    "build_classifier",
    "tap_features",
    "split_classifier",
    "ClassifierBlocks",
    "load_digits_split",
    "PGD",
    "pgd",
    "BatchNormStatistics",
    "total_variation_l2",
    "ClassInverter",
    "Recipe",
    "recipe_from",
    "apply_tool",
    "invert_representation",
    "visualize_features",
    "manipulate_features",
    "interpolate_representations",
    "representation",
    "tool_attack",
    "gray_seeds",
    "InverterStack",
    "ComposedInverter",
    "train_stack",
    "export_inverter",
    "load_exported_inverter",
    "Schedule",
    "LossWeights",
    "build_generator",
    "new_encoder",
    "train_encoder",
    "ConditionedGenerator",
    "GeneratorRecipe",
    "train_generator",
    "adversarial_samples",
    "UniversalPattern",
    "find_pattern",
    "score_pattern",
    "transfer_matrix",
    "PatternObjective",
    "random_pattern",
    "ImageScorer",
    "FrechetDistance",
    "InceptionScore",
    "psnr",
    "ssim",
]


def __getattr__(name: str) -> Any:
    """Import a curated name from its family on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inversion' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
