"""The "robustness as a prior" representation tools (Engstrom et al. 2019).

Each tool is PGD (:mod:`inversion.attacks`) on a custom loss with a huge ``eps``, so only
the [0, 1] box constrains the image, and L2-normalised gradient steps:

- :func:`invert_representation`: from a seed, minimise ``||R(x) - R(x_t)|| / ||R(x_t)||``;
- :func:`visualize_features`: from a seed, maximise one component ``R(x)[k]``;
- :func:`manipulate_features`: the same from real images, with small steps, so the
  feature's pattern is added to the image;
- :func:`interpolate_representations`: invert convex combinations of ``R(x1)`` and ``R(x2)``.

``R`` is the penultimate representation (the input of the classification head) or any
named layer, flattened. Seeds are gray images with a little noise (``gray_seeds``) or
other images. Visualisation and manipulation use the authors' "fake ReLU": the last ReLU
of the network passes gradients as if it were the identity, so a component that is zero
at the seed can still grow (:func:`fake_last_relu`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from inversion.attacks import PGD
from inversion.errors import InversionError
from inversion.metrics.reconstruction import agreement
from inversion.models import PENULTIMATE, ImageClassifier
from inversion.robust_prior.defaults import DEFAULT_ALPHAS, TOOLS, SeedImage, Tool

HUGE_EPS = 1e4  # the representation tools are constrained by the [0, 1] box alone


def tool_attack(step_size: float, steps: int) -> PGD:
    """The PGD of the representation tools: L2 steps, unconstrained but for the box."""
    return PGD(eps=HUGE_EPS, step_size=step_size, steps=steps, norm="l2", use_best=True)


def gray_seeds(
    shape: Sequence[int], generator: torch.Generator | None = None, device=None, std: float = 0.05
) -> Tensor:
    """Gray images with a little Gaussian noise (0.5 + N(0, 1) / 20), clamped to [0, 1]."""
    noise = torch.randn(tuple(shape), generator=generator, device=device)
    return (0.5 + std * noise).clamp(0, 1)


def representation(model: ImageClassifier, images: Tensor, layer: str = PENULTIMATE) -> Tensor:
    """``R(x)``: the flattened output of ``layer`` (default: the penultimate features)."""
    return model.features(images, [layer])[layer].flatten(1).float()


@contextmanager
def fake_last_relu(model: nn.Module) -> Iterator[bool]:
    """Let the last ``nn.ReLU`` of ``model`` pass gradients unchanged while the block runs.

    Forward values are unchanged. Yields whether a ReLU module was found (networks with
    functional or other activations are left as they are).
    """
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        yield False
        return
    stash: dict[str, Tensor] = {}

    def keep_input(_module: nn.Module, inputs: tuple) -> None:
        stash["input"] = inputs[0].clone()  # an in-place ReLU overwrites its input

    def straight_through(_module: nn.Module, _inputs: tuple, output: Tensor) -> Tensor:
        before = stash.pop("input")
        return before + (output - before).detach()

    handles = [
        relus[-1].register_forward_pre_hook(keep_input),
        relus[-1].register_forward_hook(straight_through),
    ]
    try:
        yield True
    finally:
        for handle in handles:
            handle.remove()


def _distance_loss(layer: str):
    def loss(model: ImageClassifier, images: Tensor, targets: Tensor) -> Tensor:
        diff = representation(model, images, layer) - targets
        return diff.norm(dim=1) / targets.norm(dim=1).clamp_min(1e-12)

    return loss


def _component_loss(layer: str):
    def loss(model: ImageClassifier, images: Tensor, features: Tensor) -> Tensor:
        values = representation(model, images, layer)
        return values.gather(1, features.view(-1, 1)).squeeze(1)

    return loss


def representation_distance(
    model: ImageClassifier, images: Tensor, targets: Tensor, layer: str = PENULTIMATE
) -> Tensor:
    """``||R(x) - t|| / ||t||`` for each image (the inversion loss), without gradients."""
    with torch.no_grad():
        return _distance_loss(layer)(model, images, targets)


def invert_representation(
    model: ImageClassifier,
    targets: Tensor,
    seeds: Tensor,
    attack: PGD,
    layer: str = PENULTIMATE,
    progress: bool = False,
) -> Tensor:
    """Find images whose representations match ``targets``, starting from ``seeds``.

    Args:
        model: The (frozen) classifier.
        targets: N x D target representations (e.g. ``representation(model, originals)``).
        seeds: N x C x H x W starting images in [0, 1] (``gray_seeds`` or other images).
        attack: The PGD settings (``tool_attack(step_size, steps)``).
        layer: The layer whose output is matched.
        progress: Show a progress bar over the iterations.

    Returns:
        N x C x H x W images in [0, 1].
    """
    return attack(
        model, seeds, targets, targeted=True, loss_fn=_distance_loss(layer), progress=progress
    )


def visualize_features(
    model: ImageClassifier,
    features: Tensor,
    seeds: Tensor,
    attack: PGD,
    layer: str = PENULTIMATE,
    progress: bool = False,
) -> Tensor:
    """Maximise component ``features[i]`` of ``R`` from ``seeds[i]``, for each i.

    Called on real images with small steps this is feature manipulation
    (:func:`manipulate_features`). The network's last ReLU is a fake ReLU meanwhile.
    """
    features = features.to(device=seeds.device, dtype=torch.long)
    with fake_last_relu(model):
        return attack(model, seeds, features, loss_fn=_component_loss(layer), progress=progress)


def manipulate_features(
    model: ImageClassifier,
    images: Tensor,
    features: Tensor,
    attack: PGD,
    layer: str = PENULTIMATE,
    progress: bool = False,
) -> Tensor:
    """Add the pattern of feature ``features[i]`` to real image ``images[i]``."""
    return visualize_features(model, features, images, attack, layer, progress)


def interpolate_representations(
    model: ImageClassifier,
    first: Tensor,
    second: Tensor,
    alphas: Sequence[float],
    seeds: Tensor,
    attack: PGD,
    layer: str = PENULTIMATE,
    progress: bool = False,
) -> Tensor:
    """Invert ``(1 - a) R(first) + a R(second)`` for each ``a`` in ``alphas``.

    Args:
        model: The (frozen) classifier.
        first: N x C x H x W images.
        second: N x C x H x W images (paired with ``first``).
        alphas: Interpolation weights (0 gives ``first``'s representation).
        seeds: N x C x H x W starting images, reused for every weight.
        attack: The PGD settings.
        layer: The layer whose output is interpolated.
        progress: Show a progress bar over the iterations.

    Returns:
        N x len(alphas) x C x H x W images: row i walks from ``first[i]`` to ``second[i]``.
    """
    with torch.no_grad():
        start, end = representation(model, first, layer), representation(model, second, layer)
    weights = torch.as_tensor(list(alphas), dtype=start.dtype, device=start.device)
    mixed = torch.lerp(start.unsqueeze(1), end.unsqueeze(1), weights.view(1, -1, 1))
    count = len(weights)
    repeated_seeds = seeds.unsqueeze(1).expand(-1, count, *seeds.shape[1:]).flatten(0, 1)
    images = invert_representation(
        model, mixed.flatten(0, 1), repeated_seeds, attack, layer, progress
    )
    return images.view(len(first), count, *first.shape[1:])


def top_features(model: ImageClassifier, images: Tensor, layer: str = PENULTIMATE) -> Tensor:
    """The most activated component of ``R`` for each image (N)."""
    with torch.no_grad():
        return representation(model, images, layer).argmax(dim=1)


def chosen_features(
    model: ImageClassifier, sources: Tensor, layer: str, features: Sequence[int] | None
) -> Tensor:
    """One component per image: ``features`` cycled over the batch, or each image's top one."""
    if features is None:
        return top_features(model, sources, layer)
    index = torch.arange(len(sources), device=sources.device) % len(features)
    return torch.as_tensor(list(features), device=sources.device)[index]


def apply_tool(
    model: ImageClassifier,
    tool: Tool,
    images: Tensor,
    labels: Tensor | None,
    attack: PGD,
    generator: torch.Generator,
    layer: str = PENULTIMATE,
    seed_image: SeedImage = "gray",
    features: Sequence[int] | None = None,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    progress: bool = False,
) -> dict[str, Tensor]:
    """Apply one representation tool to a batch (plain PyTorch; the module calls this).

    Args:
        model: The frozen classifier.
        tool: ``invert``, ``visualize``, ``manipulate`` or ``interpolate``.
        images: The batch, N x C x H x W in [0, 1].
        labels: Their classes, or None.
        attack: The PGD of the tool (see :func:`tool_attack`).
        generator: Source of the gray seeds' noise.
        layer: The representation: ``penultimate`` or a named layer.
        seed_image: Start of ``invert``/``interpolate``: ``gray`` seeds or the previous
            image of the batch (``other_image``).
        features: Components to visualise or add (default: the most activated one of
            each image, or of its donor for ``manipulate``).
        alphas: Interpolation weights.
        progress: Show a progress bar over the PGD iterations.

    Returns:
        The outputs of the callbacks' contract: ``images``; ``labels`` where the images
        have a class (the original's, or the donor's for ``manipulate``); ``originals``
        for ``invert`` and ``manipulate``; and for ``invert`` the per-image final
        ``repr_distance`` and ``agree_target`` (1.0 where the classifier gives the
        inversion its original's class).
    """

    def start() -> Tensor:
        if seed_image == "other_image":
            return images.roll(1, dims=0)
        return gray_seeds(images.shape, generator, images.device)

    out: dict[str, Tensor | None]
    if tool == "invert":
        targets = representation(model, images, layer)
        inverted = invert_representation(model, targets, start(), attack, layer, progress)
        out = {
            "images": inverted,
            "labels": labels,
            "originals": images,
            "repr_distance": representation_distance(model, inverted, targets, layer),
            "agree_target": agreement(model, inverted, images),
        }
    elif tool == "visualize":
        seeds = gray_seeds(images.shape, generator, images.device)
        chosen = chosen_features(model, images, layer, features)
        visual = visualize_features(model, chosen, seeds, attack, layer, progress)
        out = {"images": visual, "labels": labels if features is None else None}
    elif tool == "manipulate":
        donors = images.roll(1, dims=0)
        donor_labels = None if features is not None or labels is None else labels.roll(1, 0)
        chosen = chosen_features(model, donors, layer, features)
        changed = manipulate_features(model, images, chosen, attack, layer, progress)
        out = {"images": changed, "labels": donor_labels, "originals": images}
    elif tool == "interpolate":
        second = images.roll(-1, dims=0)
        mixed = interpolate_representations(
            model, images, second, list(alphas), start(), attack, layer, progress
        )
        rows = torch.cat([images.unsqueeze(1), mixed, second.unsqueeze(1)], dim=1)
        out = {"images": rows.flatten(0, 1)}
    else:
        raise InversionError(f"Unknown tool {tool!r}; choose one of {TOOLS}.")
    return {k: v for k, v in out.items() if v is not None}
