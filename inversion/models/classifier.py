"""The wrapper every classifier in the framework goes through.

:class:`ImageClassifier` takes images in [0, 1] (N x C x H x W), adapts the channel count,
resizes inputs for models with a fixed input size, normalises, and runs the network. It
can be frozen (eval mode that ``.train()`` cannot undo, no gradients) and exposes named
feature taps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.errors import InversionError
from inversion.models.taps import PENULTIMATE, tap_features


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
    """

    mean: Tensor  # buffers (registered in __init__)
    std: Tensor

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
        self.frozen = False
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
