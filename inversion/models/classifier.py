"""The wrapper every classifier in the framework goes through.

:class:`ImageClassifier` takes images in [0, 1] (N x C x H x W), adapts the channel count,
resizes inputs for models with a fixed input size, normalises, and runs the network. It
can be frozen (eval mode that ``.train()`` cannot undo, no gradients) and exposes named
feature taps. Its :class:`EvalTransform` says how the model's own evaluation reads a
picture from disk (resize, centre crop, interpolation), as timm's data config or
torchvision's weights transforms do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms import v2

from inversion.errors import InversionError
from inversion.models.taps import PENULTIMATE, tap_features

Interpolation = Literal["nearest", "bilinear", "bicubic"]
CropMode = Literal["center", "squash", "border"]


@dataclass(frozen=True)
class EvalTransform:
    """A model's own evaluation preprocessing of a picture: resize, then centre crop.

    The ImageNet convention (timm's ``transforms_imagenet_eval``, torchvision's
    ``ImageClassification``): resize to ``resize_size`` with the model's interpolation,
    then crop ``crop_size`` from the centre (224 from 256 for most models). Normalisation is
    not part of it: :class:`ImageClassifier` normalises with the model's mean and std.

    Attributes:
        crop_size: The model's native crop side.
        resize_size: The side resized to before the crop, at the native crop side (the
            shorter side for ``center``; both sides for ``squash``).
        interpolation: The model's resampling filter.
        crop_mode: ``center`` keeps the aspect ratio; ``squash`` resizes both sides (as
            timm's ``crop_mode='squash'``). timm's ``border`` mode (pad to fit) is recorded
            but not supported for image folders.
    """

    crop_size: int
    resize_size: int
    interpolation: Interpolation = "bilinear"
    crop_mode: CropMode = "center"

    @property
    def crop_pct(self) -> float:
        """Crop side over resize side (0.875 for 224 from 256)."""
        return self.crop_size / self.resize_size

    def resize_for(self, image_size: int) -> int:
        """The resize side for an output of ``image_size`` (the native crop ratio kept)."""
        if image_size == self.crop_size:
            return self.resize_size
        return math.floor(image_size * self.resize_size / self.crop_size)

    def transforms(self, image_size: int | None = None) -> list[nn.Module]:
        """The resize and centre crop (torchvision v2) that give ``image_size`` pixels.

        On PIL images they resample as timm's and torchvision's own eval transforms do.

        Args:
            image_size: Output side (default: the native crop side).

        Raises:
            InversionError: For timm's ``border`` crop mode.
        """
        if self.crop_mode == "border":
            raise InversionError(
                "The model's eval transform uses timm's 'border' crop mode (pad to fit), "
                "which image folders do not support; leave eval_transform unset."
            )
        crop = image_size or self.crop_size
        side = self.resize_for(crop)
        mode = v2.InterpolationMode(self.interpolation)
        size = [side] if self.crop_mode == "center" else [side, side]
        return [v2.Resize(size, interpolation=mode, antialias=True), v2.CenterCrop(crop)]


class ImageClassifier(nn.Module):
    """A classifier that takes images in [0, 1] and normalises them itself.

    Args:
        net: The network; it takes normalised N x ``in_chans`` x H x W tensors.
        name: The spec that built it (for messages and metric names).
        num_classes: Number of output logits.
        in_chans: Channels the network expects. Inputs with 1 channel are replicated
            for a 3-channel network; RGB inputs are averaged for a 1-channel one.
        input_size: The network's native (H, W).
        mean: Per-channel normalisation mean (length ``in_chans`` or 1).
        std: Per-channel normalisation std (length ``in_chans`` or 1).
        fixed_size: Whether the network only accepts ``input_size``; other sizes are
            then resized (bilinear) inside the wrapper.
        head: Name of the final classification module inside ``net`` (the input to it
            is the ``penultimate`` feature), or None if there is none to tap.
        feature_layers: Suggested layer names for feature taps.
        eval_transform: How the model's own evaluation resizes and crops pictures from
            disk (None: no such convention, e.g. the digits zoo).

    Attributes:
        architecture: The :func:`~inversion.models.build_classifier` arguments (``spec``,
            ``num_classes``, ``in_chans``, ``input_size``) that rebuild this network
            untrained, without a weights file or a download (None when not built from a
            spec); checkpoints store it so that they load on their own.
    """

    mean: Tensor  # buffers (registered in __init__)
    std: Tensor
    architecture: dict[str, Any] | None

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        num_classes: int,
        in_chans: int,
        input_size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        fixed_size: bool = False,
        head: str | None = None,
        feature_layers: Sequence[str] = (),
        eval_transform: EvalTransform | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.fixed_size = fixed_size
        self.head = head
        self.feature_layers = list(feature_layers)
        self.eval_transform = eval_transform
        self.frozen = False
        self.architecture = None
        mean_t = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("mean", mean_t, persistent=False)
        self.register_buffer("std", std_t, persistent=False)

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"name={self.name!r}, num_classes={self.num_classes}, in_chans={self.in_chans}, "
            f"input_size={self.input_size}, fixed_size={self.fixed_size}, frozen={self.frozen}"
        )

    def prepare(self, images: Tensor) -> Tensor:
        """Check, adapt, resize (fixed-size networks) and normalise images for the network.

        Args:
            images: N x C x H x W floating-point tensor in [0, 1].

        Returns:
            The normalised tensor the network takes.

        Raises:
            InversionError: If the batch has the wrong rank, dtype or channel count.
        """
        return self.normalize(images, resize=self.fixed_size)

    def normalize(self, images: Tensor, resize: bool = False) -> Tensor:
        """Check, adapt the channels of and normalise images in [0, 1], at their own size.

        What the network sees, without the resize of fixed-size networks unless
        ``resize`` (image priors that act on the normalised image use this).

        Args:
            images: N x C x H x W floating-point tensor in [0, 1].
            resize: Resize to ``input_size`` (bilinear) where the size differs.

        Returns:
            The normalised N x ``in_chans`` x H' x W' tensor.

        Raises:
            InversionError: If the batch has the wrong rank, dtype or channel count.
        """
        if images.ndim != 4:
            raise InversionError(
                f"{self.name}: expected a batch of images N x C x H x W in [0, 1], got a "
                f"tensor of shape {tuple(images.shape)}; add a batch dimension with "
                "images.unsqueeze(0) for a single image."
            )
        if not images.is_floating_point():
            raise InversionError(
                f"{self.name}: expected floating-point images in [0, 1], got {images.dtype}; "
                "convert with images.float() / 255."
            )
        channels = images.shape[1]
        if channels != self.in_chans:
            if channels == 1:
                images = images.expand(-1, self.in_chans, -1, -1)
            elif self.in_chans == 1 and channels == 3:
                images = images.mean(dim=1, keepdim=True)
            else:
                raise InversionError(
                    f"{self.name}: takes {self.in_chans}-channel images (1-channel and RGB "
                    f"inputs are adapted), got {channels} channels in shape "
                    f"{tuple(images.shape)}."
                )
        if resize and tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(
                images, size=self.input_size, mode="bilinear", align_corners=False
            )
        return (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)

    def forward(self, images: Tensor) -> Tensor:
        """Return the logits for images in [0, 1]."""
        return self.net(self.prepare(images))

    def forward_with_features(
        self, images: Tensor, layers: Sequence[str]
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Return the logits and the outputs of named layers in one forward pass.

        Args:
            images: N x C x H x W in [0, 1].
            layers: Module names inside ``net`` (see :meth:`layer_names`), or
                ``"penultimate"`` for the input of the classification head.

        Returns:
            ``(logits, {layer: activation})``.
        """
        with tap_features(self.net, layers, head=self.head) as features:
            logits = self(images)
        return logits, dict(features)

    def features(self, images: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Return the outputs of named layers (see :meth:`forward_with_features`)."""
        return self.forward_with_features(images, layers)[1]

    def penultimate(self, images: Tensor) -> Tensor:
        """Return the representation fed to the classification head (N x D)."""
        return self.features(images, [PENULTIMATE])[PENULTIMATE]

    def layer_names(self) -> list[str]:
        """Return every module name that can be tapped, plus ``"penultimate"``."""
        names = [name for name, _ in self.net.named_modules() if name]
        return names + ([PENULTIMATE] if self.head is not None else [])

    def freeze(self) -> ImageClassifier:
        """Put the model in eval mode for good and turn off its gradients.

        A later ``.train()`` call (e.g. from a LightningModule) leaves it in eval mode.

        Returns:
            self, for chaining.
        """
        self.frozen = True
        self.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> ImageClassifier:
        """Set training mode, except that a frozen model always stays in eval mode."""
        return super().train(mode and not self.frozen)
