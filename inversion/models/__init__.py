"""Classifiers: the spec parser, the [0, 1]-input wrapper, feature taps, the digits zoo."""

from inversion.models.classifier import ImageClassifier
from inversion.models.specs import build_classifier, classifier_from_checkpoint
from inversion.models.taps import PENULTIMATE, tap_features

__all__ = [
    "PENULTIMATE",
    "ImageClassifier",
    "build_classifier",
    "classifier_from_checkpoint",
    "tap_features",
]
