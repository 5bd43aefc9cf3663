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

import dataclasses
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.errors import InversionError
from inversion.models import ImageClassifier
from inversion.models.taps import resolve_module
from inversion.models.weights import load_checkpoint_file

OBJECTIVES = ("dominant", "sgd_uap", "cosine_uap", "gd_uap")
LOGITS = "logits"
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
        state = load_checkpoint_file(path).get("state_dict", {})
        saved = state.get("pattern.pattern")
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


def flat_features(model: ImageClassifier, images: Tensor, layer: str) -> Tensor:
    """``f(images)`` as N x D: the logits (``layer="logits"``) or a tapped layer, flattened."""
    if layer == LOGITS:
        return model(images).flatten(1)
    return model.features(images, [layer])[layer].flatten(1)


@dataclasses.dataclass(frozen=True)
class PatternObjective:
    """What a universal pattern minimises (no labels anywhere).

    Attributes:
        name: ``dominant``, ``sgd_uap``, ``cosine_uap`` or ``gd_uap`` (see the module doc).
        layer: ``f`` of ``dominant`` and ``cosine_uap``: ``logits``, ``penultimate`` or any
            module name of the network (its output is flattened).
        layers: Layers whose activation norms ``gd_uap`` maximises (default: the
            classifier's suggested feature layers).
    """

    name: str = "dominant"
    layer: str = LOGITS
    layers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise InversionError(f"Unknown objective {self.name!r}; choose one of {OBJECTIVES}.")
        object.__setattr__(self, "layers", tuple(self.layers))

    def activation_layers(self, model: ImageClassifier) -> tuple[str, ...]:
        """The layers of ``gd_uap`` for ``model``."""
        layers = self.layers or tuple(model.feature_layers)
        if not layers:
            raise InversionError(
                f"{model.name} suggests no feature layers; give gd_uap its layers "
                "(ImageClassifier.layer_names() lists them)."
            )
        return layers

    def check(self, model: ImageClassifier) -> None:
        """Raise a clear error for a layer name the model does not have."""
        names = self.activation_layers(model) if self.name == "gd_uap" else (self.layer,)
        for name in names:
            if name == "penultimate" and model.head is None:
                raise InversionError(
                    f"{model.name} has no known classification head, so 'penultimate' cannot "
                    "be tapped; name a layer instead (ImageClassifier.layer_names())."
                )
            if name not in (LOGITS, "penultimate"):
                resolve_module(model.net, name)

    def __call__(self, model: ImageClassifier, pattern: UniversalPattern, images: Tensor) -> Tensor:
        """The loss of ``pattern`` on a batch of proxy images (a scalar to minimise)."""
        if self.name == "gd_uap":
            _, acts = model.forward_with_features(pattern.alone(), self.activation_layers(model))
            return -sum(torch.log(a.float().norm() + 1e-12) for a in acts.values())
        perturbed = pattern(images)
        if self.name == "dominant":  # one forward pass: the pattern alone, then x + p
            both = torch.cat([pattern.alone().to(perturbed.dtype), perturbed])
            features = flat_features(model, both, self.layer).float()
            cos = F.cosine_similarity(features[:1], features[1:], dim=1)
            return (1.0 - cos).mean()
        with torch.no_grad():
            clean = flat_features(model, images, self.layer if self.name != "sgd_uap" else LOGITS)
        if self.name == "sgd_uap":
            return -F.cross_entropy(model(perturbed).float(), clean.argmax(1))
        features = flat_features(model, perturbed, self.layer).float()
        return F.cosine_similarity(features, clean.float(), dim=1).mean()


def pattern_optimizer(
    pattern: UniversalPattern, lr: float = 1e-2, weight_decay: float = 1e-5
) -> torch.optim.Adam:
    """Adam on the pattern (the authors' lr 1e-2 and weight decay 1e-5)."""
    return torch.optim.Adam(pattern.parameters(), lr=lr, weight_decay=weight_decay)


def proxy_images(batch: object) -> Tensor:
    """The images of a proxy batch: a tensor, or the first item of ``(images, labels)``.

    Labels are never read: proxy data are label-free by construction.
    """
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, Sequence) and batch and isinstance(batch[0], Tensor):
        return batch[0]
    raise InversionError(
        "Proxy data for a universal pattern are batches of images (a tensor, or "
        f"(images, labels) with labels ignored); got a {type(batch).__name__}. Use an image "
        "DataModule (DigitsDataModule, ImageFolderDataModule, NoiseDataModule)."
    )


def find_pattern(
    model: ImageClassifier,
    batches: Iterable[object],
    objective: PatternObjective,
    eps: float = DEFAULT_EPS,
    clip: bool = True,
    canvas: float = 0.0,
    epochs: int = 10,
    lr: float = 1e-2,
    weight_decay: float = 1e-5,
    progress: bool = False,
) -> UniversalPattern:
    """Optimise a universal pattern on proxy batches (a plain PyTorch loop).

    Args:
        model: A frozen classifier (images in [0, 1]).
        batches: Re-iterable proxy batches (e.g. a DataLoader); labels are ignored.
        objective: What to minimise.
        eps: L-inf radius.
        clip: Clip ``x + p`` to [0, 1].
        canvas: Background of the pattern alone (see :class:`UniversalPattern`).
        epochs: Passes over ``batches``.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        progress: Show a progress bar (stderr).

    Returns:
        The optimised pattern, projected into the ball, on the model's device.
    """
    device = next(model.parameters()).device
    objective.check(model)
    pattern: UniversalPattern | None = None
    optimizer = None
    rounds = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        rounds = tqdm(rounds, desc=f"{objective.name} pattern", file=sys.stderr, leave=False)
    for _ in rounds:
        for batch in batches:
            images = proxy_images(batch).to(device)
            if pattern is None:
                pattern = UniversalPattern(images.shape[1], images.shape[-1], eps, clip, canvas)
                pattern = pattern.to(device)
                optimizer = pattern_optimizer(pattern, lr, weight_decay)
            pattern.project_()
            loss = objective(model, pattern, images)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    if pattern is None:
        raise InversionError("The proxy data gave no batch; give at least one image.")
    pattern.project_()
    return pattern.requires_grad_(False)
