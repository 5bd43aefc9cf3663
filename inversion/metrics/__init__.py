"""Metrics on produced images: feature extractors, FID, IS (torchmetrics-style)."""

from inversion.metrics.features import (
    ClassifierFeatures,
    FeatureExtractor,
    InceptionFeatures,
    build_feature_extractor,
)
from inversion.metrics.fid import FrechetDistance, frechet_distance
from inversion.metrics.inception_score import InceptionScore, inception_score

__all__ = [
    "ClassifierFeatures",
    "FeatureExtractor",
    "FrechetDistance",
    "InceptionFeatures",
    "InceptionScore",
    "build_feature_extractor",
    "frechet_distance",
    "inception_score",
]
