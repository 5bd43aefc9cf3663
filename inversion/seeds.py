"""The one seed derivation: a seed and the coordinates of a piece of work -> its seed.

Every per-batch, per-rank or per-item random stream (noise images, latents, dropout
masks of samples, gray seeds, initial images) is seeded with ``derive_seed(seed, ...)``,
so runs are reproducible, ranks draw different numbers, and a resumed run draws what the
uninterrupted run drew.
"""

from __future__ import annotations

import torch

MULTIPLIER = 1_000_003  # a prime larger than any batch, item or rank index in practice
SEED_BITS = 63


def derive_seed(seed: int, *parts: int) -> int:
    """``seed`` combined with ``parts`` (batch index, rank, item, ...) into one seed.

    ``derive_seed(seed, i) == seed * 1_000_003 + i``; more parts chain the same way, and
    the result is reduced to 63 bits. Distinct non-negative parts below 1,000,003 give
    distinct seeds. Stable across runs, processes and platforms.
    """
    value = seed
    for part in parts:
        value = (value * MULTIPLIER + part) % (1 << SEED_BITS)
    return value


def generator(seed: int, *parts: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``derive_seed(seed, *parts)``."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *parts))
