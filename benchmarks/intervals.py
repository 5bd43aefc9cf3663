"""Means over seeds with 95% intervals, and the claims they allow (DESIGN: benchmarks).

Every table cell is a mean over seeds with a Student-t interval; a claim "A beats B"
stands only where the interval of the paired difference (same seeds) excludes zero::

    a = estimate([0.61, 0.64, 0.58])          # 0.610 ± 0.075
    verdict("pii", "deepdream", paired_difference(pii_runs, deepdream_runs))
    # 'pii beats deepdream' / 'deepdream beats pii' / 'no difference found'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from scipy import stats

CONFIDENCE = 0.95
SEEDS = (0, 1, 2)  # the seeds of every digits table (at least 3: DESIGN, benchmarks)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` seeds and the half-width of its interval (``nan`` for one seed)."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        """Lower end of the interval."""
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        """Upper end of the interval."""
        return self.mean + self.half_width

    def excludes_zero(self) -> bool:
        """Whether the whole interval lies on one side of zero (never for one seed)."""
        return math.isfinite(self.half_width) and (self.low > 0 or self.high < 0)

    def format(self, digits: int = 3) -> str:
        """``mean ± half-width`` with ``digits`` decimals (no interval for one seed)."""
        if not math.isfinite(self.half_width):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"


def estimate(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean of ``values`` with its two-sided Student-t interval.

    Args:
        values: One number per seed (at least one; every value finite).
        confidence: Coverage of the interval.

    Raises:
        ValueError: No values, or a non-finite one.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("estimate() needs at least one value")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"non-finite value among {values}")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return Estimate(mean, math.nan, 1)
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    quantile = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    return Estimate(mean, quantile * math.sqrt(variance / n), n)


class SeedRuns:
    """A table row's metrics at each seed: mix into a row dataclass with a ``runs`` field."""

    runs: list[dict[str, float]]

    def values(self, metric: str) -> list[float]:
        """The metric at each seed (in seed order)."""
        return [run[metric] for run in self.runs]

    def estimate(self, metric: str) -> Estimate:
        """Mean and interval of a metric over the seeds."""
        return estimate(self.values(metric))


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> Estimate:
    """Interval of the mean of ``a[i] - b[i]`` (the same seed ``i`` for both methods)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    return estimate([x - y for x, y in zip(a, b, strict=True)], confidence)


def verdict(name_a: str, name_b: str, difference: Estimate, higher_is_better: bool = True) -> str:
    """The claim the interval of ``A - B`` allows, in words."""
    if not difference.excludes_zero():
        return f"no difference found between {name_a} and {name_b}"
    a_wins = (difference.mean > 0) == higher_is_better
    return f"{name_a} beats {name_b}" if a_wins else f"{name_b} beats {name_a}"
