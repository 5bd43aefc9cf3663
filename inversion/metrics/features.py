"""Feature extractors for FID and IS: the standard InceptionV3, or any classifier.

An extractor maps images in [0, 1] (N x C x H x W, 1 or 3 channels) to ``(pool, logits)``:
the pooled features FID compares and the logits IS scores. Its ``name`` goes into the
metric names: ``fid``/``is`` for Inception, ``fid_digits-resnet`` for a classifier, so a
custom extractor is never mistaken for Inception FID.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from inversion.errors import InversionError
from inversion.metrics.names import short_name, split_named_spec
from inversion.models import PENULTIMATE, build_classifier
from inversion.models.weights import load_checkpoint_file

INCEPTION = "inception"
INCEPTION_WEIGHTS_ENV_VAR = "INVERSION_INCEPTION_WEIGHTS"
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


def to_uint8_rgb(images: Tensor) -> Tensor:
    """Quantise images in [0, 1] to uint8 RGB (rounding; gray is replicated)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise InversionError(
            f"Expected images N x C x H x W with 1 or 3 channels, got {tuple(images.shape)}."
        )
    if images.dtype != torch.uint8:
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


class FeatureExtractor(nn.Module):
    """Base class: ``forward(images) -> (pool, logits)``; frozen and in eval mode.

    Attributes:
        name: Short name used in metric names (``inception`` or e.g. ``digits-resnet``).
    """

    name: str

    def metric_name(self, metric: str) -> str:
        """``fid``/``is`` for Inception, ``fid_<name>``/``is_<name>`` otherwise."""
        return metric if self.name == INCEPTION else f"{metric}_{self.name}"

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Stay in eval mode: feature extractors are never trained."""
        return super().train(False)


def _find_inception_weights(weights: str | None) -> str:
    candidates = [weights, os.environ.get(INCEPTION_WEIGHTS_ENV_VAR)]
    hub = os.path.join(torch.hub.get_dir(), "checkpoints", INCEPTION_WEIGHTS_FILE)
    for candidate in candidates:
        if candidate:
            if not os.path.isfile(candidate):
                raise InversionError(f"InceptionV3 weights file not found: {candidate}.")
            return candidate
    if os.path.isfile(hub):
        return hub
    raise InversionError(
        "FID/IS need the InceptionV3 weights of torch-fidelity "
        f"({INCEPTION_WEIGHTS_FILE}), and none were found. Download that file on a machine "
        "with a network (it is on torch-fidelity's GitHub releases page) and pass its path "
        f"(inception_weights=PATH, or the {INCEPTION_WEIGHTS_ENV_VAR} environment variable), "
        f"or put it in {os.path.dirname(hub)}. Or choose a classifier as the feature "
        "extractor (e.g. feature=digits:resnet)."
    )


class InceptionFeatures(FeatureExtractor):
    """The standard InceptionV3 of torch-fidelity (2048-d pool, 1008 unbiased logits).

    Resizes with torch-fidelity's TF1-compatible bilinear interpolation (no
    antialiasing), so numbers match torch-fidelity and the papers. The weights file is
    first checked with ``torch.load(weights_only=True)``; a file that is not InceptionV3's
    state is refused with an :class:`InversionError`.

    Args:
        weights: Path to torch-fidelity's InceptionV3 weights file; default: the
            ``INVERSION_INCEPTION_WEIGHTS`` variable, then the torch hub cache.
    """

    name = INCEPTION

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = _find_inception_weights(weights)
        load_checkpoint_file(path)  # refuses pickled code before torch-fidelity loads it
        try:
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat",
                ["2048", "logits_unbiased"],
                feature_extractor_weights_path=path,
            )
        except RuntimeError as err:  # load_state_dict: missing, unexpected or mis-sized keys
            summary = " ".join(str(err).split())[:200]
            raise InversionError(
                f"{path} is not torch-fidelity's InceptionV3 weights file "
                f"({INCEPTION_WEIGHTS_FILE}): {summary}. Pass that file (see "
                f"{INCEPTION_WEIGHTS_ENV_VAR}), or choose a classifier as the feature "
                "extractor (e.g. --feature digits:resnet)."
            ) from err
        self.net.eval()

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:  # noqa: D102
        pool, logits = self.net(to_uint8_rgb(images))
        return pool, logits


class ClassifierFeatures(FeatureExtractor):
    """A classifier as feature extractor: penultimate features and logits.

    Images are quantised to uint8 first, exactly as for Inception, so that a folder of
    PNGs and the tensors that were saved to it score the same.

    Args:
        spec: Any classifier spec (e.g. ``digits:resnet``), or ``name=spec`` to choose the
            name that metric names carry (see :mod:`inversion.metrics.names`).
    """

    def __init__(self, spec: str) -> None:
        super().__init__()
        self.name = short_name(spec)
        self.classifier = build_classifier(split_named_spec(spec)[1]).freeze()

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:  # noqa: D102
        images = to_uint8_rgb(images).float() / 255
        logits, feats = self.classifier.forward_with_features(images, [PENULTIMATE])
        return feats[PENULTIMATE].float(), logits.float()


def build_feature_extractor(feature: str = INCEPTION, weights: str | None = None):
    """``inception`` (with an optional weights path) or a classifier spec."""
    if feature == INCEPTION:
        return InceptionFeatures(weights)
    return ClassifierFeatures(feature)
