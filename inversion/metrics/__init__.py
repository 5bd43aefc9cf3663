"""Metrics on produced images: feature extractors, FID, KID, IS (torchmetrics-style)."""

from inversion.metrics.features import (
    ClassifierFeatures,
    FeatureExtractor,
    InceptionFeatures,
    build_feature_extractor,
)
from inversion.metrics.fid import FrechetDistance, frechet_distance
from inversion.metrics.inception_score import InceptionScore, inception_score
from inversion.metrics.kid import KernelDistance, kernel_distance

__all__ = [
    "ClassifierFeatures",
    "FeatureExtractor",
    "FrechetDistance",
    "InceptionFeatures",
    "InceptionScore",
    "KernelDistance",
    "build_feature_extractor",
    "frechet_distance",
    "inception_score",
    "kernel_distance",
]
