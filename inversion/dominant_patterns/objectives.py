"""What a universal pattern minimises, and the plain-PyTorch search (``find_pattern``)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Sequence
from typing import Literal, cast, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from inversion.dominant_patterns.pattern import DEFAULT_EPS, UniversalPattern
from inversion.errors import InversionError
from inversion.models import ImageClassifier
from inversion.models.taps import resolve_module

Objective = Literal["dominant", "sgd_uap", "cosine_uap", "gd_uap"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
LOGITS = "logits"


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
            total = sum(torch.log(a.float().norm() + 1e-12) for a in acts.values())
            return -cast(Tensor, total)  # a tensor: there is at least one layer
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
            if pattern is None or optimizer is None:  # both made at the first batch
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
