"""What a snapshot shows: a class inverter's current images, or samples of a generator.

Read from the module's public attributes (``inverter``, ``generator``), without changing
its state: samples are drawn in eval mode from fixed seeds, with the global random state
restored, so a run with snapshots trains exactly as one without.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import cast

import torch
from torch import Tensor, nn
from torchmetrics.functional.classification import multiclass_accuracy

from inversion.class_inversion import ClassInverter
from inversion.conditioned_generator import ConditionedGenerator, sample_classes
from inversion.metrics.scorer import MEAN


def class_inverter(module: nn.Module) -> ClassInverter | None:
    """The class inverter of a ``ClassInversion`` module (built in its setup), else None."""
    inverter = getattr(module, "inverter", None)
    return inverter if isinstance(inverter, ClassInverter) else None


def stage_ends(inverter: ClassInverter) -> list[int]:
    """Steps of a run after which each stage of the inverter's schedule has ended."""
    return list(itertools.accumulate(stage.steps for stage in inverter.stages))


def trained_generator(module: nn.Module) -> nn.Module | None:
    """The generator a module trains (``module.generator`` with trainable weights), else None.

    A conditioned generator, or an unconditional one with an integer ``latent_dim`` (the
    DCGAN). A frozen generator (GAN inversion's) is not trained: None.
    """
    generator = getattr(module, "generator", None)
    if not isinstance(generator, nn.Module):
        return None
    if not any(p.requires_grad for p in generator.parameters()):
        return None
    if isinstance(generator, ConditionedGenerator):
        return generator
    return generator if isinstance(getattr(generator, "latent_dim", None), int) else None


@torch.no_grad()
def generator_samples(
    generator: nn.Module, per_class: int, max_classes: int, seed: int, device: torch.device
) -> tuple[Tensor, Tensor | None]:
    """The same samples at every call: ``(images, labels)`` on the CPU.

    A conditioned generator: ``per_class`` samples of each of its first ``max_classes``
    classes (``sample_classes``: eval mode, dropout as the generator says). Another:
    ``per_class * max_classes`` samples of fixed standard-normal codes in eval mode
    (labels None). Training mode and the global random state are restored.
    """
    if isinstance(generator, ConditionedGenerator):
        classes = range(min(generator.num_classes, max_classes))
        return sample_classes(generator, classes, per_class, seed, device=device)
    draws = torch.Generator().manual_seed(seed)
    latent_dim = cast(int, generator.latent_dim)  # an int: checked by trained_generator
    z = torch.randn(per_class * max_classes, latent_dim, generator=draws)
    was_training = generator.training
    generator.eval()
    try:
        images = generator(z.to(device))
    finally:
        generator.train(was_training)
    return images.float().cpu(), None


@torch.no_grad()
def verifier_top1(
    verifiers: Mapping[str, nn.Module], images: Tensor, labels: Tensor
) -> dict[str, float]:
    """``top1_<name>`` of each verifier on ``images`` (their mean ``top1_verifiers``).

    The accuracy ``ImageMetrics`` reports (micro top-1, labels below 0 ignored), computed
    here on this one process, without a cross-process sync.
    """
    results: dict[str, float] = {}
    for name, verifier in verifiers.items():
        device = next(verifier.parameters()).device
        logits = verifier(images.to(device).float())
        accuracy = multiclass_accuracy(
            logits,
            labels.to(device).clamp(min=-1),
            num_classes=logits.shape[1],
            average="micro",
            top_k=1,
            ignore_index=-1,
        )
        results[f"top1_{name}"] = float(accuracy)
    if len(results) > 1:
        results[f"top1_{MEAN}"] = sum(results.values()) / len(results)
    return results
