"""A conditioned generator G(z, c) for network inversion, and its label encodings.

Suhail and Sethi (2024) train a generator that maps a latent ``z`` and a class ``c`` to
images a frozen classifier assigns to ``c``. To capture the many inputs of one class the
label is *hidden* in an encoding rather than handed over as a plain one-hot:

- ``onehot``: the plain baseline, one-hot vector at the input;
- ``vector``: a soft vector at the input, ``softmax(scale * u)`` of a random ``u`` whose
  largest entry is moved to the label (so its argmax is the label);
- ``matrix``: a "hot" conditioning matrix that joins at an intermediate layer (after the
  input layer): a square matrix whose row and column of the label are ones (see
  :func:`hot_matrix` for many classes);
- ``vector_matrix``: both.

Heavy dropout sits after every hidden layer and can stay on at sampling time
(:attr:`ConditionedGenerator.dropout_at_sampling`): ``generator.eval()`` then keeps the
dropout layers active while batch norm uses its running statistics.

Plain PyTorch::

    generator = ConditionedGenerator(num_classes=10, image_size=32, channels=1)
    images = generator.sample(torch.arange(10))          # 10 x 1 x 32 x 32 in [0, 1]
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.errors import InversionError

Conditioning = Literal["onehot", "vector", "matrix", "vector_matrix"]
CONDITIONINGS: tuple[str, ...] = get_args(Conditioning)
SMALLEST_START, LARGEST_START = 4, 7  # side of the first feature map (32 px -> 4, 224 px -> 7)


@dataclasses.dataclass
class Condition:
    """An encoded batch of labels.

    Attributes:
        vector: N x K vector fed at the generator's input (one-hot or soft), or None.
        matrix: N x 1 x m x m hot matrix that joins after the input layer, or None.
        target: N x K probabilities the classifier's output is pulled towards (the KL
            term's conditioning vector): the soft vector where there is one, else one-hot.
    """

    vector: Tensor | None
    matrix: Tensor | None
    target: Tensor


def soft_vector(labels: Tensor, noise: Tensor, scale: float = 6.0) -> Tensor:
    """A random probability vector per label whose argmax is the label.

    The largest entry of ``noise`` is swapped with the entry at the label, then
    ``softmax(scale * noise)``. Larger ``scale`` gives a peakier vector.

    Args:
        labels: N class indices.
        noise: N x K random values (e.g. standard normal), the hidden part.
        scale: Inverse temperature of the softmax.

    Returns:
        N x K probabilities (float32).
    """
    noise = noise.float()
    largest = noise.argmax(dim=1, keepdim=True)
    at_label = noise.gather(1, labels[:, None])
    swapped = noise.scatter(1, largest, at_label).scatter(1, labels[:, None], noise.amax(1, True))
    return torch.softmax(scale * swapped, dim=1)


def default_matrix_size(num_classes: int) -> int:
    """K for up to 32 classes (the paper's K x K matrix), else ceil(sqrt(K))."""
    return num_classes if num_classes <= 32 else math.ceil(math.sqrt(num_classes))


def hot_matrix(labels: Tensor, num_classes: int, size: int | None = None) -> Tensor:
    """The "hot" conditioning matrix: ones on one row and one column, zeros elsewhere.

    With ``size == K`` (the paper's form) row ``c`` and column ``c`` are ones. A K x K
    matrix is too large for many classes (10^6 entries for ImageNet), so with a smaller
    ``size`` (at least ``ceil(sqrt(K))``) the label is written in two digits of base
    ``size``: row ``c // size`` and column ``c % size``, still unique per label.

    Args:
        labels: N class indices.
        num_classes: K.
        size: Side m of the matrix (default :func:`default_matrix_size`).

    Returns:
        N x 1 x m x m float tensor of zeros and ones.
    """
    size = default_matrix_size(num_classes) if size is None else size
    if size == num_classes:
        rows = cols = labels
    elif size * size >= num_classes:
        rows, cols = labels // size, labels % size
    else:
        raise InversionError(
            f"A {size} x {size} conditioning matrix cannot tell {num_classes} classes "
            f"apart; use matrix_size >= {math.ceil(math.sqrt(num_classes))}."
        )
    row_hot = F.one_hot(rows, size).float()
    col_hot = F.one_hot(cols, size).float()
    return torch.maximum(row_hot[:, :, None], col_hot[:, None, :])[:, None]


def upsampling_plan(image_size: int) -> tuple[int, int]:
    """(side of the first feature map, number of 2x upsamplings) for an image size.

    The first side lies in 4..7: 32 px -> (4, 3), 28 -> (7, 2), 64 -> (4, 4), 224 -> (7, 5).
    """
    for doublings in range(0, 12):
        start, rest = divmod(image_size, 2**doublings)
        if rest == 0 and SMALLEST_START <= start <= LARGEST_START:
            return start, doublings
    raise InversionError(
        f"image_size {image_size} is not s x 2^n with s in {SMALLEST_START}..{LARGEST_START}; "
        "choose e.g. 28, 32, 56, 64, 112, 128 or 224."
    )


def _projection(in_features: int, channels: int, side: int, dropout: float) -> nn.Sequential:
    """Linear layer to a channels x side x side map, batch norm, ReLU, dropout."""
    return nn.Sequential(
        nn.Linear(in_features, channels * side * side, bias=False),
        nn.Unflatten(1, (channels, side, side)),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
    )


def _block(c_in: int, c_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
    )


class ConditionedGenerator(nn.Module):
    """G(z, c): a latent and an encoded class to an image in [0, 1].

    A linear layer maps ``[z, vector]`` to a ``start x start`` feature map; each stage then
    upsamples 2x (nearest) and applies conv 3x3, batch norm, ReLU and dropout; a last conv
    3x3 and a sigmoid give the image. Channels halve per stage from
    ``width * 2^stages`` (at most ``max_width``) down to ``width``. The hot matrix joins
    after the input layer: a second linear layer maps the flattened m x m matrix to a
    ``start x start`` feature map (a quarter of the first stage's channels, with its own
    batch norm, ReLU and dropout) that is stacked onto the first one. (Stacked as one
    more image channel at a later stage instead, 3 x 3 convolutions see only a part of
    the row and the column, and on the digits the label barely gets through.) Sized for
    32 px (4 -> 8 -> 16 -> 32) and 224 px (7 -> 14 -> ... -> 224) images alike.

    Args:
        num_classes: K, the classes of the target classifier.
        image_size: Side of the images.
        channels: Image channels (1 or 3).
        latent_dim: Size of the latent z.
        conditioning: ``onehot``, ``vector``, ``matrix`` or ``vector_matrix``.
        width: Channels of the last stage.
        max_width: Largest channel count.
        dropout: Dropout rate after every hidden layer (0 = none).
        dropout_at_sampling: Keep dropout on in eval mode (sampling), as the paper does.
        soft_scale: Inverse temperature of the soft conditioning vector.
        matrix_size: Side of the hot matrix (default K for K <= 32, else ceil(sqrt(K))).

    Attributes:
        init_args: The constructor's arguments (saved beside the weights to rebuild it).
    """

    def __init__(
        self,
        num_classes: int,
        image_size: int = 32,
        channels: int = 1,
        latent_dim: int = 64,
        conditioning: Conditioning = "matrix",
        width: int = 16,
        max_width: int = 512,
        dropout: float = 0.5,
        dropout_at_sampling: bool = True,
        soft_scale: float = 6.0,
        matrix_size: int | None = None,
    ) -> None:
        super().__init__()
        self.init_args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        if conditioning not in CONDITIONINGS:
            raise InversionError(
                f"Unknown conditioning {conditioning!r}; choose one of {CONDITIONINGS}."
            )
        if not 0.0 <= dropout < 1.0:
            raise InversionError(f"dropout must lie in [0, 1), got {dropout}.")
        if channels not in (1, 3) or num_classes < 2 or latent_dim < 1 or width < 1:
            raise InversionError(
                "Need channels 1 or 3, num_classes >= 2, latent_dim >= 1 and width >= 1; got "
                f"{channels}, {num_classes}, {latent_dim}, {width}."
            )
        self.num_classes, self.image_size, self.channels = num_classes, image_size, channels
        self.latent_dim, self.conditioning = latent_dim, conditioning
        self.dropout_at_sampling, self.soft_scale = dropout_at_sampling, soft_scale
        self.uses_vector = conditioning in ("onehot", "vector", "vector_matrix")
        self.uses_matrix = conditioning in ("matrix", "vector_matrix")
        self.matrix_size = matrix_size or default_matrix_size(num_classes)
        start, stages = upsampling_plan(image_size)
        widths = [min(width * 2 ** (stages - i), max_width) for i in range(stages + 1)]
        in_features = latent_dim + (num_classes if self.uses_vector else 0)
        self.start = start
        self.project = _projection(in_features, widths[0], start, dropout)
        self.matrix_project: nn.Module | None = None
        matrix_channels = 0
        if self.uses_matrix:
            hot_matrix(torch.zeros(1, dtype=torch.long), num_classes, self.matrix_size)  # checks
            matrix_channels = max(widths[0] // 4, 1)
            self.matrix_project = nn.Sequential(
                nn.Flatten(), _projection(self.matrix_size**2, matrix_channels, start, dropout)
            )
        self.stages = nn.ModuleList(
            _block(widths[i - 1] + (matrix_channels if i == 1 else 0), widths[i], dropout)
            for i in range(1, stages + 1)
        )
        self.to_image = nn.Conv2d(widths[-1], channels, 3, padding=1)

    # --- conditions -------------------------------------------------------------------
    def encode(self, labels: Tensor, noise: Tensor | None = None) -> Condition:
        """Encode labels as this generator's conditioning (``noise``: N x K, the hidden part).

        ``noise`` is needed by the soft-vector encodings; one-hot and matrix ignore it.
        """
        if labels.ndim != 1:
            raise InversionError(f"labels must be a 1-d tensor, got {tuple(labels.shape)}.")
        onehot = F.one_hot(labels, self.num_classes).float()
        vector = matrix = None
        target = onehot
        if self.conditioning in ("vector", "vector_matrix"):
            if noise is None or noise.shape != onehot.shape:
                raise InversionError(
                    f"The {self.conditioning!r} conditioning needs noise of shape "
                    f"{tuple(onehot.shape)} (N x num_classes) beside the labels."
                )
            target = soft_vector(labels, noise, self.soft_scale)
            vector = target
        elif self.conditioning == "onehot":
            vector = onehot
        if self.uses_matrix:
            matrix = hot_matrix(labels, self.num_classes, self.matrix_size)
        return Condition(vector, matrix, target)

    # --- generation -------------------------------------------------------------------
    def forward(self, latent: Tensor, condition: Condition) -> Tensor:
        """Images (N x C x S x S in [0, 1]) for latents (N x latent_dim) and a condition."""
        if latent.ndim != 2 or latent.shape[1] != self.latent_dim:
            raise InversionError(
                f"latent must be N x {self.latent_dim}, got {tuple(latent.shape)}."
            )
        x = latent if condition.vector is None else torch.cat([latent, condition.vector], 1)
        x = self.project(x)
        if self.matrix_project is not None:
            if condition.matrix is None:
                raise InversionError("This generator is conditioned on a hot matrix; got none.")
            x = torch.cat([x, self.matrix_project(condition.matrix.to(x.dtype))], dim=1)
        for stage in self.stages:
            x = stage(F.interpolate(x, scale_factor=2, mode="nearest"))
        return torch.sigmoid(self.to_image(x))

    def draw(
        self, labels: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Standard-normal latents (N x latent_dim) and encoding noise (N x K), labels' device."""
        latent, noise = draw_latents(len(labels), self.latent_dim, self.num_classes, generator)
        return latent.to(labels.device), noise.to(labels.device)

    @torch.no_grad()
    def sample(self, labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Sample one image per label in eval mode (dropout on if ``dropout_at_sampling``).

        Args:
            labels: N class indices (their device is the output's).
            generator: Source of randomness for z and the encoding noise (CPU).
        """
        check_labels(labels, self.num_classes)
        was_training = self.training
        self.eval()
        latent, noise = self.draw(labels, generator)
        images = self(latent, self.encode(labels, noise))
        self.train(was_training)
        return images

    def train(self, mode: bool = True) -> ConditionedGenerator:
        """Set training mode; in eval mode dropout stays on if ``dropout_at_sampling``."""
        super().train(mode)
        if not mode and self.dropout_at_sampling:
            for module in self.modules():
                if isinstance(module, nn.Dropout):
                    module.train(True)
        return self


def draw_latents(
    num: int, latent_dim: int, num_classes: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Standard-normal latents (num x latent_dim) and encoding noise (num x num_classes)."""
    latent = torch.randn(num, latent_dim, generator=generator)
    noise = torch.randn(num, num_classes, generator=generator)
    return latent, noise


def balanced_labels(
    num: int, num_classes: int, generator: torch.Generator | None = None, offset: int = 0
) -> Tensor:
    """``num`` labels with every class as often as possible (counts differ by at most one).

    Labels ``(offset + i) % K`` for i < num, in a random order.
    """
    labels = (torch.arange(num) + offset) % num_classes
    return labels[torch.randperm(num, generator=generator)]


def check_labels(labels: Tensor, num_classes: int) -> None:
    """Raise unless ``labels`` is a 1-d tensor of classes in 0..K-1 (reads them: not per step)."""
    if labels.ndim != 1 or labels.dtype not in (torch.int32, torch.int64):
        raise InversionError(
            f"labels must be a 1-d integer tensor, got {labels.dtype} {tuple(labels.shape)}."
        )
    if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise InversionError(f"labels must be classes in 0..{num_classes - 1}.")
