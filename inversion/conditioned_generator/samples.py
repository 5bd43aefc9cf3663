"""Applications of a trained conditioned generator: sample sheets, adversarial samples.

- :func:`sample_classes` draws many samples of chosen classes (interpretability: what
  inputs does the network map to class c?);
- :func:`adversarial_samples` marks the samples the target classifies as their class
  while independent verifiers do not (the paper's adversarial-sample generation);
- :func:`write_class_folders` writes images as ``root/<class index>/<n>.png``, the layout
  ``python evaluate.py folder`` scores;
- :func:`generator_from_checkpoint` rebuilds the generator of a training run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.utils import save_image

from inversion.conditioned_generator.generator import ConditionedGenerator, check_labels
from inversion.errors import InversionError
from inversion.models.weights import load_checkpoint_file, module_substate

GENERATOR_KEY = "conditioned_generator"  # checkpoint entry: the generator's init args
ADVERSARIAL_RULES = ("majority", "all")


def generator_from_checkpoint(path: str | Path) -> ConditionedGenerator:
    """The trained generator of a ``ConditionedGeneratorInversion`` checkpoint (eval mode).

    Loaded with ``weights_only=True``; the classifier is not needed.
    """
    checkpoint = load_checkpoint_file(path)
    if GENERATOR_KEY not in checkpoint:
        raise InversionError(
            f"{path} is not a checkpoint of ConditionedGeneratorInversion (no "
            f"'{GENERATOR_KEY}' entry); give the .ckpt file a generator run wrote."
        )
    generator = ConditionedGenerator(**checkpoint[GENERATOR_KEY])
    generator.load_state_dict(module_substate(checkpoint, "generator"))
    return generator.eval()


@torch.no_grad()
def sample_classes(
    generator: ConditionedGenerator,
    classes: Sequence[int],
    per_class: int,
    seed: int = 0,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> tuple[Tensor, Tensor]:
    """``per_class`` samples of each class, in eval mode (dropout as the generator says).

    Args:
        generator: The trained generator.
        classes: Class indices.
        per_class: Samples per class.
        seed: Seed of the latents, encoding noise and dropout masks.
        batch_size: Samples per forward pass.
        device: Where to generate.

    Returns:
        ``(images, labels)`` on the CPU, class by class.
    """
    labels = torch.tensor(list(classes), dtype=torch.long).repeat_interleave(per_class)
    check_labels(labels, generator.num_classes)
    draws = torch.Generator().manual_seed(seed)
    generator = generator.to(device)
    images = []
    with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(labels), batch_size):
            batch = labels[start : start + batch_size].to(device)
            images.append(generator.sample(batch, draws).cpu())
    return torch.cat(images), labels


@torch.no_grad()
def predict(classifier: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    """Top-1 classes of images, in batches, on the classifier's device."""
    device = next(classifier.parameters()).device
    out = [
        classifier(images[i : i + batch_size].to(device)).argmax(1).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


def adversarial_samples(
    target: nn.Module,
    verifiers: Sequence[nn.Module],
    images: Tensor,
    labels: Tensor,
    rule: str = "majority",
) -> dict[str, Tensor]:
    """Which samples fool the target: it says ``c`` while the verifiers say "not c".

    A sample of class ``c`` is *adversarial* when the target classifies it as ``c`` and,
    with ``rule="majority"``, more than half of the verifiers classify it as another class
    (``rule="all"``: every verifier does).

    Args:
        target: The classifier the generator inverted.
        verifiers: Independent classifiers (at least one).
        images: Generated images (N x C x H x W in [0, 1]).
        labels: Their conditioning classes.
        rule: ``majority`` or ``all``.

    Returns:
        ``adversarial`` (N booleans), ``target_accepts`` (N booleans: target says c),
        ``verifiers_reject`` (N booleans: the rule holds), and the rates
        ``adversarial_rate`` (adversarial / N) and ``adversarial_of_accepted``
        (adversarial / accepted by the target), as 0-d tensors.
    """
    if rule not in ADVERSARIAL_RULES:
        raise InversionError(f"Unknown rule {rule!r}; choose one of {ADVERSARIAL_RULES}.")
    if not verifiers:
        raise InversionError("Adversarial samples need at least one independent verifier.")
    if len(images) == 0 or len(images) != len(labels):
        raise InversionError("Give as many labels as images (at least one).")
    accepts = predict(target, images) == labels
    disagree = torch.stack([predict(v, images) != labels for v in verifiers]).float()
    rejects = disagree.mean(0) > 0.5 if rule == "majority" else disagree.min(0).values > 0
    adversarial = accepts & rejects
    return {
        "adversarial": adversarial,
        "target_accepts": accepts,
        "verifiers_reject": rejects,
        "adversarial_rate": adversarial.float().mean(),
        "adversarial_of_accepted": adversarial.sum() / accepts.sum().clamp_min(1),
    }


def write_class_folders(images: Tensor, labels: Tensor, root: str | Path) -> list[Path]:
    """Write images as ``root/<class>/<n>.png`` (n counts per class); returns the paths."""
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise InversionError(f"{root} exists and is not empty; choose a new folder.")
    paths: list[Path] = []
    counts: dict[int, int] = {}
    for image, label in zip(images, labels.tolist(), strict=True):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        number = counts.get(label, 0)
        counts[label] = number + 1
        path = folder / f"{number:05d}.png"
        save_image(image.float().clamp(0, 1), path)
        paths.append(path)
    return paths
