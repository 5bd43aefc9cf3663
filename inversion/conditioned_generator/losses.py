"""The loss of network inversion with a conditioned generator (Suhail and Sethi, 2024).

    L = kl * KL(target || softmax(f(x))) + ce * CE(f(x), c)
      + cosine * mean_{i != j} cos(phi_i, phi_j) + orthogonality * ||Gram(phi) - I||^2
      + tv_l2 * TV(x) + l2 * ||x||

with ``x = G(z, c)``, ``target`` the conditioning vector (soft vector or one-hot) and
``phi`` the frozen classifier's features at one layer (penultimate by default). The
image priors are those of :mod:`inversion.priors`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, cast, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from inversion.errors import InversionError
from inversion.models import PENULTIMATE, ImageClassifier
from inversion.priors import l2_prior, total_variation_l2

CosinePairs = Literal["all", "same_class"]
COSINE_PAIRS: tuple[str, ...] = get_args(CosinePairs)


def kl_to_condition(logits: Tensor, target: Tensor) -> Tensor:
    """``KL(target || softmax(logits))`` averaged over the batch (zeros in target allowed)."""
    log_probs = F.log_softmax(logits.float(), dim=1)
    target = target.float()
    return (torch.xlogy(target, target) - target * log_probs).sum(dim=1).mean()


def cosine_gram(features: Tensor) -> Tensor:
    """N x N cosine similarities of flattened features (float32)."""
    unit = F.normalize(features.flatten(1).float(), dim=1, eps=1e-8)
    return unit @ unit.T


def mean_pairwise_cosine(features: Tensor, labels: Tensor | None = None) -> Tensor:
    """Mean cosine similarity of the features of a batch over pairs i != j.

    Args:
        features: N x ... features (N >= 2), flattened per sample.
        labels: If given, only pairs of the same label count (within-class similarity).

    Returns:
        A scalar tensor in [-1, 1] (0 when no pair qualifies).
    """
    n = features.shape[0]
    if n < 2:
        raise InversionError("The cosine-dissimilarity term needs batches of at least 2 images.")
    gram = cosine_gram(features)
    if labels is None:
        return (gram.sum() - gram.diagonal().sum()) / (n * (n - 1))
    pairs = (labels[:, None] == labels[None, :]).float()
    pairs.fill_diagonal_(0)
    return (gram * pairs).sum() / pairs.sum().clamp_min(1)


def feature_orthogonality(features: Tensor) -> Tensor:
    """Mean squared off-diagonal entry of the cosine Gram matrix: ``||G - I||_F^2 / (N (N-1))``.

    The diagonal of the cosine Gram matrix is 1, so this is the squared Frobenius
    distance to the identity, normalised by the number of pairs.
    """
    n = features.shape[0]
    if n < 2:
        raise InversionError("The orthogonality term needs batches of at least 2 images.")
    gram = cosine_gram(features)
    eye = torch.eye(n, device=gram.device, dtype=gram.dtype)
    return (gram - eye).pow(2).sum() / (n * (n - 1))


@dataclasses.dataclass(frozen=True)
class GeneratorLoss:
    """Weights of the loss terms, and the classifier layer the feature terms read.

    Attributes:
        kl: KL from the conditioning vector to the classifier's softmax (alpha).
        ce: Cross-entropy with the label (beta).
        cosine: Mean pairwise feature cosine over the batch (gamma).
        orthogonality: Feature Gram matrix to identity (follow-up paper).
        tv_l2: DeepInversion's L2 total variation of the images.
        l2: Mean L2 norm of the images.
        feature_layer: Classifier layer of the features (``penultimate`` or a module name).
        cosine_pairs: ``all`` pairs of the batch (the paper's term) or ``same_class`` pairs
            only (spreads the samples of each class rather than the classes).
    """

    kl: float = 1.0
    ce: float = 1.0
    cosine: float = 5.0
    orthogonality: float = 0.0
    tv_l2: float = 0.0
    l2: float = 0.0
    feature_layer: str = PENULTIMATE
    cosine_pairs: CosinePairs = "same_class"

    def __post_init__(self) -> None:
        if self.cosine_pairs not in COSINE_PAIRS:
            raise InversionError(
                f"Unknown cosine_pairs {self.cosine_pairs!r}; choose one of {COSINE_PAIRS}."
            )
        weights = {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if k not in ("feature_layer", "cosine_pairs")
        }
        negative = sorted(k for k, v in weights.items() if v < 0)
        if negative:
            raise InversionError(f"Loss weights must be >= 0; {negative} are negative.")
        if not any(weights.values()):
            raise InversionError("Every loss weight is 0; turn on at least one term (e.g. ce).")

    @property
    def needs_features(self) -> bool:
        """Whether a feature term is on (the classifier's features are then tapped)."""
        return self.cosine > 0 or self.orthogonality > 0

    def classify(self, classifier: ImageClassifier, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """Logits and (if a feature term is on) the features of the layer, in one pass."""
        if not self.needs_features:
            return classifier(images), None
        logits, features = classifier.forward_with_features(images, [self.feature_layer])
        return logits, features[self.feature_layer]

    def __call__(
        self,
        classifier: ImageClassifier,
        images: Tensor,
        labels: Tensor,
        target: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The weighted loss of generated images and its (weighted) parts.

        Args:
            classifier: The frozen target.
            images: N x C x H x W generated images in [0, 1].
            labels: N conditioning labels.
            target: N x K conditioning vectors (probabilities).

        Returns:
            ``(loss, parts)``: parts hold each active weighted term (detached), and
            ``target_acc`` (the fraction the classifier assigns to the label) and
            ``cosine_similarity`` (unweighted mean pairwise cosine, when features are on).
        """
        logits, features = self.classify(classifier, images)
        parts: dict[str, Tensor] = {}
        if self.kl:
            parts["kl"] = self.kl * kl_to_condition(logits, target)
        if self.ce:
            parts["ce"] = self.ce * F.cross_entropy(logits.float(), labels)
        if features is not None:
            same = labels if self.cosine_pairs == "same_class" else None
            similarity = mean_pairwise_cosine(features, same)
            if self.cosine:
                parts["cosine"] = self.cosine * similarity
            if self.orthogonality:
                parts["orthogonality"] = self.orthogonality * feature_orthogonality(features)
        if self.tv_l2:
            parts["tv_l2"] = self.tv_l2 * total_variation_l2(images.float())
        if self.l2:
            parts["l2"] = self.l2 * l2_prior(images.float())
        loss = cast(Tensor, sum(parts.values()))  # a tensor: some term is on (__post_init__)
        parts = {k: v.detach() for k, v in parts.items()}
        with torch.no_grad():
            parts["target_acc"] = (logits.argmax(1) == labels).float().mean()
            if features is not None:
                parts["cosine_similarity"] = similarity.detach()
        return loss, parts

    def with_options(self, options: dict[str, Any] | None) -> GeneratorLoss:
        """A copy with some fields replaced; unknown names are an error that lists them."""
        options = dict(options or {})
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise InversionError(f"Unknown loss options {unknown}; valid: {sorted(fields)}.")
        return dataclasses.replace(self, **options)
