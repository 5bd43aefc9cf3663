"""The seeded (latent, label, noise) draws a conditioned generator trains and samples on.

One implementation for the plain loop (:func:`~inversion.conditioned_generator.train_generator`)
and for ``LatentsDataModule``. A draw is a whole batch ``{"latent": B x D, "label": B,
"noise": B x K}``: standard-normal latents, label-balanced classes (counts differ by at
most one) and the random part of the hidden label encodings (the soft vector's noise),
drawn together from one seed made by :func:`inversion.seeds.derive_seed`:

- training batch ``key`` (``epoch * batches_per_epoch + b``: the step, on one process) on
  rank ``r`` of ``W``: ``derive_seed(seed, SPLIT_SEEDS["train"], W, r, key)``, so
  processes never share a draw and a resumed run draws what the uninterrupted one drew;
- the fixed validation / test draws: ``derive_seed(seed, SPLIT_SEEDS[split])``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from inversion.conditioned_generator.generator import balanced_labels, draw_latents
from inversion.seeds import derive_seed

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def draw_batch(
    num: int, latent_dim: int, num_classes: int, seed: int, label_offset: int = 0
) -> dict[str, Tensor]:
    """One seeded batch: balanced labels in random order, latents, encoding noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = balanced_labels(num, num_classes, generator, label_offset)
    latent, noise = draw_latents(num, latent_dim, num_classes, generator)
    return {"latent": latent, "label": labels, "noise": noise}


def train_batch(
    seed: int,
    key: int,
    batch_size: int,
    latent_dim: int,
    num_classes: int,
    rank: int = 0,
    world: int = 1,
) -> dict[str, Tensor]:
    """Training batch ``key`` of process ``rank`` of ``world``.

    The labels continue a global round-robin (offset ``(key * world + rank) * batch_size``),
    so over the batches of all processes every class comes up equally often.
    """
    batch_seed = derive_seed(seed, SPLIT_SEEDS["train"], world, rank, key)
    offset = (key * world + rank) * batch_size
    return draw_batch(batch_size, latent_dim, num_classes, batch_seed, offset)


def fixed_draws(
    seed: int, split: str, per_class: int, latent_dim: int, num_classes: int
) -> dict[str, Tensor]:
    """All ``per_class * num_classes`` draws of the ``val`` or ``test`` split, class by class."""
    draws = draw_batch(
        per_class * num_classes, latent_dim, num_classes, derive_seed(seed, SPLIT_SEEDS[split])
    )
    order = draws["label"].argsort(stable=True)  # class by class: grids and sheets read well
    return {k: v[order] for k, v in draws.items()}
