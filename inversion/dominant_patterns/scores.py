"""How well a universal pattern attacks a classifier: fooling rate, dominance, accuracies.

Torchmetrics metrics (sum states, so they are exact under DDP), one object that updates
them all from logits, and plain functions that score a pattern on tensors of images and
tabulate its transfer to other classifiers.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torchmetrics import Metric, SumMetric

from inversion.dominant_patterns.pattern import UniversalPattern
from inversion.metrics.scorer import top_k_accuracy
from inversion.models import ImageClassifier


def predictions(outputs: Tensor) -> Tensor:
    """Class indices from logits (N x K) or from indices (N)."""
    return outputs.argmax(dim=1) if outputs.ndim == 2 else outputs


class AgreementRate(Metric):
    """Fraction of images on which two predictions agree (both N x K logits or N indices).

    ``other`` may hold one row, compared with every image (the pattern alone).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    agree: Tensor  # states (add_state)
    total: Tensor

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("agree", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, other: Tensor) -> None:
        """Count the images of ``preds`` that agree with ``other``."""
        preds, other = predictions(preds), predictions(other)
        self.agree += (preds == other).sum()
        self.total += preds.numel()

    def compute(self) -> Tensor:
        """The agreeing fraction (0 before any update)."""
        return self.agree.float() / self.total.clamp(min=1)


class FoolingRate(AgreementRate):
    """Fraction of images whose prediction the pattern changes (vs the clean prediction).

    ``update(clean, perturbed)``: logits or predictions of the clean and perturbed images.
    Not the error against the ground truth: an image the model already got wrong counts
    as fooled only if the pattern changes its prediction.
    """

    def compute(self) -> Tensor:
        """The changed fraction (0 before any update)."""
        return 1.0 - super().compute() if self.total > 0 else super().compute()


class Dominance(AgreementRate):
    """Fraction of images with prediction(x + p) = prediction(p): the pattern decides.

    ``update(perturbed, pattern)``: logits or predictions of the perturbed images and of
    the pattern alone (one row, or one per image).
    """


class PatternScores(nn.Module):
    """Fooling rate, dominance, clean and perturbed accuracy, updated from logits.

    Accuracies use the ground-truth labels (labels -1 are ignored; without labels they
    are not reported); fooling rate and dominance need none.

    Args:
        num_classes: Classes of the attacked classifier.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.fooling_rate = FoolingRate()
        self.dominance = Dominance()
        self.clean_acc = top_k_accuracy(num_classes, 1)
        self.perturbed_acc = top_k_accuracy(num_classes, 1)
        self.labelled = SumMetric()  # images with a label (>= 0), over all processes

    @torch.no_grad()
    def update(
        self, clean: Tensor, perturbed: Tensor, alone: Tensor, labels: Tensor | None = None
    ) -> None:
        """Update from the logits of the clean images, ``x + p`` and the pattern alone."""
        self.fooling_rate.update(clean, perturbed)
        self.dominance.update(perturbed, alone)
        if labels is not None:
            self.labelled.update((labels >= 0).sum().float())
            self.clean_acc.update(clean, labels)
            self.perturbed_acc.update(perturbed, labels)

    def compute(self) -> dict[str, float]:
        """Every metric as a float, synced across processes (accuracies only with labels)."""
        names = ["fooling_rate", "dominance"]
        if self.labelled.update_called and float(self.labelled.compute()) > 0:
            names += ["clean_acc", "perturbed_acc"]
        return {name: float(getattr(self, name).compute()) for name in names}

    @property
    def update_called(self) -> bool:
        """Whether any batch was scored since the last reset."""
        return bool(self.fooling_rate.update_called)

    def reset(self) -> None:
        """Forget what was seen."""
        for name in ("fooling_rate", "dominance", "clean_acc", "perturbed_acc", "labelled"):
            getattr(self, name).reset()


@torch.no_grad()
def pattern_logits(
    model: ImageClassifier, pattern: UniversalPattern, images: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Logits of the clean images, of ``x + p`` and of the pattern alone (one forward)."""
    alone = pattern.alone().to(images.dtype)
    logits = model(torch.cat([images, pattern(images), alone]))
    n = len(images)
    return logits[:n], logits[n : 2 * n], logits[2 * n :]


@torch.no_grad()
def score_pattern(
    model: ImageClassifier,
    pattern: UniversalPattern,
    images: Tensor,
    labels: Tensor | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """Fooling rate, dominance (and accuracies, given labels) of a pattern on images.

    Args:
        model: The attacked classifier (frozen).
        pattern: The pattern (moved to the images' device).
        images: N x C x H x W in [0, 1].
        labels: Ground-truth labels for the accuracies, or None.
        batch_size: Images per forward pass.
    """
    device = images.device
    scores = PatternScores(model.num_classes).to(device)
    pattern = pattern.to(device)
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        chunk = None if labels is None else labels[start : start + batch_size]
        scores.update(*pattern_logits(model, pattern, batch), chunk)
    return scores.compute()


def transfer_matrix(
    patterns: Mapping[str, UniversalPattern],
    models: Mapping[str, ImageClassifier],
    images: Tensor,
    metric: str = "fooling_rate",
) -> dict[str, dict[str, float]]:
    """Apply each pattern (found on one model) to each model.

    Args:
        patterns: Patterns by the name of the model they were found on.
        models: The attacked classifiers by name.
        images: The evaluation images (labels are not needed).
        metric: ``fooling_rate`` or ``dominance``.

    Returns:
        ``{pattern name: {model name: value}}``; the diagonal is the white-box attack.
    """
    return {
        source: {
            target: score_pattern(model, pattern, images)[metric]
            for target, model in models.items()
        }
        for source, pattern in patterns.items()
    }
