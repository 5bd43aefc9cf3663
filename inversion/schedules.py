"""The one learning-rate schedule: linear warm-up, then cosine decay to zero.

Every family uses it: the classifier recipe and the conditioned generator (as a
``LambdaLR`` stepped once per optimiser step), class inversion (restarted in every
stage) and the layer-wise phases (restarted in every phase, no warm-up).
"""

from __future__ import annotations

import functools
import math

import torch


def warmup_cosine(step: int, total: int, warmup: int = 0, peak: float = 1.0) -> float:
    """The learning rate of step ``step`` (0-based) of a schedule of ``total`` steps.

    Args:
        step: The step; past ``total`` the rate stays at 0.
        total: Steps of the schedule (warm-up included).
        warmup: Steps of linear warm-up from ``peak / warmup`` to ``peak``.
        peak: The rate at the end of the warm-up (1.0: a factor for ``LambdaLR``).

    Returns:
        ``peak * (step + 1) / warmup`` during the warm-up, then
        ``peak * 0.5 * (1 + cos(pi * progress))`` with progress going from 0 to 1.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer, total: int, warmup: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """:func:`warmup_cosine` as a scheduler stepped once per optimiser step."""
    factor = functools.partial(warmup_cosine, total=max(total, 1), warmup=warmup)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
