"""Within-class diversity of produced images: mean pairwise feature cosine, pixel distance.

Both are exact over every image seen (across batches and DDP processes) yet need only
per-class sums, because pairwise means decompose: for unit feature vectors ``u_i`` of one
class, ``sum_{i != j} u_i . u_j = ||sum_i u_i||^2 - n``, and for images ``x_i``,
``sum_{i != j} ||x_i - x_j||^2 = 2 n sum_i ||x_i||^2 - 2 ||sum_i x_i||^2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from inversion.errors import InversionError


class ClassDiversity(Metric):
    """Per-class mean pairwise feature cosine and pixel distance, averaged over classes.

    - ``feature_cosine``: mean over pairs ``i != j`` of one class of the cosine similarity
      of their features (lower = more diverse);
    - ``pixel_distance``: root mean square over pairs ``i != j`` of one class of the
      per-pixel distance ``||x_i - x_j||_2 / sqrt(P)`` (P values per image; images in
      [0, 1]; higher = more diverse).

    Each is averaged over the classes that received at least two images. States are
    per-class sums (K x feature_dim and K x P floats), summed across processes; images
    larger than ``pixel_size`` are area-resized to it first (bounding the memory).

    Args:
        num_classes: K.
        feature_dim: Length of the (flattened) feature vectors.
        channels: Image channels.
        pixel_size: Side at which pixel distances are measured.
    """

    full_state_update = False
    higher_is_better = None
    feature_sum: Tensor  # states (add_state)
    pixel_sum: Tensor
    pixel_square: Tensor
    count: Tensor

    def __init__(
        self, num_classes: int, feature_dim: int, channels: int, pixel_size: int, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes, self.pixel_size = num_classes, pixel_size
        pixels = channels * pixel_size * pixel_size
        self.add_state("feature_sum", torch.zeros(num_classes, feature_dim), dist_reduce_fx="sum")
        self.add_state("pixel_sum", torch.zeros(num_classes, pixels), dist_reduce_fx="sum")
        self.add_state("pixel_square", torch.zeros(num_classes), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(num_classes), dist_reduce_fx="sum")

    def update(self, features: Tensor, images: Tensor, labels: Tensor) -> None:
        """Add a batch: features (N x ...), images (N x C x H x W in [0, 1]), labels (N)."""
        if features.shape[0] != images.shape[0] or images.shape[0] != labels.shape[0]:
            raise InversionError(
                "ClassDiversity.update needs as many features, images and labels; got "
                f"{features.shape[0]}, {images.shape[0]} and {labels.shape[0]}."
            )
        unit = F.normalize(features.flatten(1).float(), dim=1, eps=1e-8)
        images = images.float()
        if images.shape[-1] != self.pixel_size or images.shape[-2] != self.pixel_size:
            images = F.adaptive_avg_pool2d(images, self.pixel_size)
        pixels = images.flatten(1)
        if pixels.shape[1] != self.pixel_sum.shape[1] or unit.shape[1] != self.feature_sum.shape[1]:
            raise InversionError(
                f"ClassDiversity was built for {self.feature_sum.shape[1]}-d features and "
                f"{self.pixel_sum.shape[1]} pixel values, got {unit.shape[1]} and "
                f"{pixels.shape[1]}."
            )
        self.feature_sum.index_add_(0, labels, unit)
        self.pixel_sum.index_add_(0, labels, pixels)
        self.pixel_square.index_add_(0, labels, pixels.pow(2).sum(1))
        self.count.index_add_(0, labels, torch.ones_like(labels, dtype=self.count.dtype))

    def per_class(self) -> dict[str, Tensor]:
        """Both measures per class (NaN where a class has fewer than two images)."""
        n = self.count
        pairs = n * (n - 1)
        valid = n >= 2
        nan = torch.full_like(n, float("nan"))
        cosine = (self.feature_sum.pow(2).sum(1) - n) / pairs.clamp_min(1)
        squared = 2 * n * self.pixel_square - 2 * self.pixel_sum.pow(2).sum(1)
        pixel = (squared.clamp_min(0) / pairs.clamp_min(1) / self.pixel_sum.shape[1]).sqrt()
        return {
            "feature_cosine": torch.where(valid, cosine, nan),
            "pixel_distance": torch.where(valid, pixel, nan),
        }

    def compute(self) -> dict[str, Tensor]:
        """Class means of ``feature_cosine`` and ``pixel_distance`` (NaN if no class qualifies)."""
        return {key: value.nanmean() for key, value in self.per_class().items()}
