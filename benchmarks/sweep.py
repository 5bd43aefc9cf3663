"""The learning-rate sweep of the digits tables: a small grid that widens at its edges.

Each table picks a method's learning rate by a validation score of runs at a tuning seed
no table cell uses. The grid starts at the default times 0.5, 1 and 2. A best rate on the
grid's edge says the best may lie beyond it, so the grid widens by another factor of 2 on
that side, up to :data:`MAX_WIDENINGS` times, until the best is inside (or the limit is
reached, which the tables report). A tie keeps the default where it is among the best (a
small validation split gives no evidence to move), else the lowest of the best rates.
"""

from __future__ import annotations

from collections.abc import Callable

FACTORS = (0.5, 1.0, 2.0)  # the first grid: the default times each
STEP = 2.0  # the grid's spacing (a factor) and how far each widening reaches
MAX_WIDENINGS = 3  # per side: the grid reaches at most default x 2**(1 + 3) each way


def pick(scores: dict[float, float], default: float) -> float:
    """The best rate of ``scores`` (rate -> validation score, higher is better).

    A tie keeps ``default`` where it is among the best, else the lowest of the best.
    """
    best = max(scores.values())
    if scores.get(default) == best:
        return default
    return min(rate for rate, score in scores.items() if score == best)


def sweep(
    score: Callable[[float], float], default: float, factors: tuple[float, ...] = FACTORS
) -> dict[float, float]:
    """Validation scores over a grid around ``default`` that widens at its edges.

    Args:
        score: The validation score of a run at a learning rate (higher is better).
        default: The method's default rate.
        factors: The first grid (the default times each), ascending.

    Returns:
        Every rate tried and its score, in ascending order of rate.
    """
    scores = {default * factor: score(default * factor) for factor in factors}
    for _ in range(MAX_WIDENINGS):
        best = pick(scores, default)
        rates = sorted(scores)
        if best == rates[-1]:
            beyond = rates[-1] * STEP
        elif best == rates[0]:
            beyond = rates[0] / STEP
        else:
            break
        scores[beyond] = score(beyond)
    return dict(sorted(scores.items()))


def at_edge(scores: dict[float, float], default: float) -> bool:
    """Whether the pick is still on the widened grid's edge (the widening limit reached)."""
    best = pick(scores, default)
    return best in (min(scores), max(scores))
