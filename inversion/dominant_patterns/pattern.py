"""Universal adversarial patterns: dominant patterns (Ye et al. 2021) and label-free baselines.

One pattern ``p`` (1 x C x H x W, initialised at zero, kept in the L-inf ball of radius
``eps``) is added to every image. Objectives (all minimised; labels are never used):

- ``dominant``: mean over the batch of ``1 - cos(f(p), f(x + p))``, with ``f`` the logits
  or a named feature layer. ``f(x)`` is not used: the pattern should decide the output.
- ``sgd_uap``: ``-CE(f(x + p), clean prediction)``, cross-entropy away from what the model
  predicts on the clean image (a plain SGD-UAP).
- ``cosine_uap``: ``cos(f(x + p), f(x))`` (the cosine UAP).
- ``gd_uap``: ``-sum_l log ||a_l(p)||``, the activation norms of several layers on the
  pattern alone (GD-UAP without data; the proxy batch only clocks the steps).

"The pattern alone" is the image ``canvas + p`` (``canvas = 0``: the raw pattern, the
formula's ``f(p)``). Whether ``x + p`` is clipped to [0, 1] is the ``clip`` setting
(UAP codes differ; every table says which). Plain PyTorch::

    model = build_classifier("digits:cnn").freeze()
    pattern = find_pattern(model, batches, PatternObjective("dominant"), eps=10 / 255)
    adversarial = pattern(images)          # x + p (clipped), N x C x H x W
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from inversion.errors import InversionError
from inversion.models.weights import load_checkpoint_file, module_substate

DEFAULT_EPS = 10 / 255


class UniversalPattern(nn.Module):
    """One additive pattern shared by every image, kept within an L-inf ball.

    Args:
        channels: Channels of the pattern (1 for the digits, 3 for RGB images).
        size: Side of the (square) pattern; it must match the images.
        eps: L-inf radius, in [0, 1] pixel units (10/255 in the paper).
        clip: Clip ``x + p`` to [0, 1] (the images stay valid images).
        canvas: The pattern alone is shown to the network as ``canvas + p`` (0: the raw
            pattern, as in ``f(p)``; 0.5: on a mid-grey image).
    """

    def __init__(
        self,
        channels: int,
        size: int,
        eps: float = DEFAULT_EPS,
        clip: bool = True,
        canvas: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0 < eps <= 1:
            raise InversionError(f"eps is an L-inf radius in (0, 1] pixel units, got {eps}.")
        if channels < 1 or size < 1:
            raise InversionError(f"A pattern needs channels and size >= 1, got {channels}, {size}.")
        self.eps, self.clip, self.canvas = float(eps), bool(clip), float(canvas)
        self.pattern = nn.Parameter(torch.zeros(1, channels, size, size))

    def extra_repr(self) -> str:  # noqa: D102
        return f"shape={tuple(self.pattern.shape)}, eps={self.eps:.4f}, clip={self.clip}"

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp the pattern into the L-inf ball in place (before each forward pass)."""
        self.pattern.clamp_(-self.eps, self.eps)

    def delta(self) -> Tensor:
        """The pattern (1 x C x H x W), projected (differentiable inside the ball)."""
        return self.pattern.clamp(-self.eps, self.eps)

    def check(self, images: Tensor) -> None:
        """Raise a clear error unless ``images`` can take the pattern."""
        if images.ndim != 4 or images.shape[1:] != self.pattern.shape[1:]:
            raise InversionError(
                f"The pattern has shape {tuple(self.pattern.shape[1:])} (channels, size, size) "
                f"but the images have shape {tuple(images.shape)}; set the module's channels "
                "and image_size to the data's."
            )

    def forward(self, images: Tensor) -> Tensor:
        """Return ``x + p`` (clipped to [0, 1] when ``clip``)."""
        self.check(images)
        perturbed = images + self.delta().to(images.dtype)
        return perturbed.clamp(0.0, 1.0) if self.clip else perturbed

    def alone(self) -> Tensor:
        """The pattern as an image on its own: ``canvas + p`` (1 x C x H x W)."""
        return self.canvas + self.delta()

    @torch.no_grad()
    def load_from(self, path: str | Path) -> None:
        """Take the pattern of a ``DominantPatterns`` checkpoint (loaded with weights_only)."""
        saved = module_substate(load_checkpoint_file(path), "pattern").get("pattern")
        if saved is None:
            raise InversionError(f"{path} holds no pattern; give a DominantPatterns checkpoint.")
        if saved.shape != self.pattern.shape:
            raise InversionError(
                f"The pattern in {path} has shape {tuple(saved.shape)}, this one "
                f"{tuple(self.pattern.shape)}; set channels and image_size to match."
            )
        self.pattern.copy_(saved)

    @torch.no_grad()
    def picture(self) -> Tensor:
        """The pattern amplified to be seen: ``p / (2 eps) + 0.5`` in [0, 1] (1 x C x H x W)."""
        return (self.delta() / (2 * self.eps) + 0.5).clamp(0.0, 1.0)


def random_pattern(
    channels: int,
    size: int,
    eps: float = DEFAULT_EPS,
    clip: bool = True,
    generator: torch.Generator | None = None,
) -> UniversalPattern:
    """A control: uniformly random signs at full strength (``p = +-eps``), not optimised."""
    pattern = UniversalPattern(channels, size, eps, clip)
    signs = torch.randint(0, 2, pattern.pattern.shape, generator=generator) * 2 - 1
    with torch.no_grad():
        pattern.pattern.copy_(signs * eps)
    return pattern
