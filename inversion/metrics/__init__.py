"""Metrics on produced images: feature extractors, FID, IS, diversity (torchmetrics-style)."""

from inversion.metrics.diversity import ClassDiversity
from inversion.metrics.features import (
    ClassifierFeatures,
    FeatureExtractor,
    InceptionFeatures,
    build_feature_extractor,
)
from inversion.metrics.fid import FrechetDistance, frechet_distance
from inversion.metrics.fooling import (
    Dominance,
    FoolingRate,
    PatternScores,
    score_pattern,
    transfer_matrix,
)
from inversion.metrics.inception_score import InceptionScore, inception_score

__all__ = [
    "ClassDiversity",
    "ClassifierFeatures",
    "Dominance",
    "FoolingRate",
    "FeatureExtractor",
    "FrechetDistance",
    "InceptionFeatures",
    "InceptionScore",
    "PatternScores",
    "build_feature_extractor",
    "frechet_distance",
    "inception_score",
    "score_pattern",
    "transfer_matrix",
]
