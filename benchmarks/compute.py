"""The compute of a training step in floating-point operations, for tables at equal compute.

A table that compares methods at equal compute gives each method a budget of operations
rather than of steps: one step of each method is counted once with torch's
:class:`~torch.utils.flop_counter.FlopCounterMode` (matrix products and convolutions,
forward and backward, as the step runs them: a frozen network's backward pass computes
only the input gradients), and the method gets as many whole steps as fit the budget.
The count depends on shapes only, so it is the same on every machine and can key a cell.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.flop_counter import FlopCounterMode


def step_flops(step: Callable[[], object]) -> int:
    """The floating-point operations one call of ``step`` runs (forward and backward).

    Args:
        step: One training step (a closure; what it returns is ignored).

    Raises:
        ValueError: The step ran no counted operation (nothing to compare).
    """
    with FlopCounterMode(display=False) as counter:
        step()
    flops = int(counter.get_total_flops())
    if flops <= 0:
        raise ValueError("the step ran no matrix product or convolution; nothing to count")
    return flops


def steps_within(budget: int, flops_per_step: int) -> int:
    """The most whole steps of ``flops_per_step`` that fit ``budget`` (at least one).

    Args:
        budget: Floating-point operations allowed.
        flops_per_step: What one step costs (:func:`step_flops`).
    """
    if flops_per_step <= 0:
        raise ValueError(f"flops_per_step must be positive, got {flops_per_step}")
    return max(1, budget // flops_per_step)
