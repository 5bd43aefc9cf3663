"""The plain-PyTorch training loop of a conditioned generator, and its one step.

``ConditionedGeneratorInversion`` (the Lightning shell) runs :func:`generator_step` in its
``training_step``, with the same optimiser and schedule, on ``LatentsDataModule``'s
batches (the draws of :mod:`inversion.conditioned_generator.draws`); a test pins it to
:func:`train_generator`.

Plain PyTorch::

    classifier = build_classifier("digits:cnn").freeze()
    generator = train_generator(classifier, steps=200, batch_size=64, seed=0)
    images, labels = sample_classes(generator.eval(), range(10), per_class=8)
"""

from __future__ import annotations

import torch
from torch import Tensor

from inversion.conditioned_generator.draws import train_batch
from inversion.conditioned_generator.generator import ConditionedGenerator
from inversion.conditioned_generator.losses import GeneratorLoss
from inversion.conditioned_generator.recipe import GeneratorRecipe
from inversion.models import ImageClassifier
from inversion.schedules import warmup_cosine_scheduler


def generator_step(
    generator: ConditionedGenerator,
    classifier: ImageClassifier,
    objective: GeneratorLoss,
    batch: dict[str, Tensor],
) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss of one batch ``{"latent", "label", "noise"}`` and its parts (see GeneratorLoss)."""
    labels = batch["label"]
    condition = generator.encode(labels, batch["noise"])
    images = generator(batch["latent"], condition)
    return objective(classifier, images, labels, condition.target)


def train_generator(
    classifier: ImageClassifier,
    steps: int,
    batch_size: int,
    seed: int,
    recipe: GeneratorRecipe | None = None,
    device: torch.device | str | None = None,
) -> ConditionedGenerator:
    """Train a generator G(z, c) whose images the frozen ``classifier`` assigns to c.

    The generator is ``recipe.new_generator(K, seed)``; step s draws
    ``train_batch(seed, s, batch_size, ...)`` (what ``LatentsDataModule(seed=seed)`` gives a
    single process), takes one Adam step on :func:`generator_step` and one step of the
    warm-up + cosine schedule over ``steps``. The training dropout masks come from the
    global RNG seeded with ``seed`` inside a fork (the caller's RNG state is left alone):
    a Lightning run equals this one when the global RNG is seeded with ``seed`` before
    ``fit``.

    Args:
        classifier: The frozen target (on ``device``).
        steps: Optimisation steps.
        batch_size: Samples per step.
        seed: Seed of the initialisation, the draws and the dropout masks.
        recipe: Generator, loss and optimiser options (default: ``GeneratorRecipe()``).
        device: Where to train (default: the classifier's device).

    Returns:
        The trained generator, in training mode (``.eval()`` samples as the paper does).
    """
    if device is None:
        first = next(classifier.parameters(), None)
        device = "cpu" if first is None else first.device
    device = torch.device(device)
    recipe = recipe or GeneratorRecipe()
    generator = recipe.new_generator(classifier.num_classes, seed).to(device)
    objective = recipe.loss()
    optimizer = recipe.optimizer(generator.parameters())
    scheduler = warmup_cosine_scheduler(optimizer, steps, recipe.warmup_steps)
    generator.train()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for step in range(steps):
            draws = train_batch(seed, step, batch_size, recipe.latent_dim, classifier.num_classes)
            batch = {k: v.to(device) for k, v in draws.items()}
            loss, _ = generator_step(generator, classifier, objective, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return generator
