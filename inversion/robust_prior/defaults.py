"""Default settings of the robust-prior family: PGD step sizes and the tools' budgets."""

from __future__ import annotations

from typing import Literal, get_args

Tool = Literal["invert", "visualize", "manipulate", "interpolate"]
SeedImage = Literal["gray", "other_image"]
TOOLS: tuple[str, ...] = get_args(Tool)
SEED_IMAGES: tuple[str, ...] = get_args(SeedImage)

STEP_FACTOR = 2.5  # default PGD step size: 2.5 * eps / steps (Madry et al.)

#: Default (step size, steps) of each tool for 32 x 32 digits; the paper's values at
#: 224 x 224 (step 1 with 10,000 / 200 iterations, step 0.1 with 800) are in configs/paper.
TOOL_DEFAULTS: dict[str, tuple[float, int]] = {
    "invert": (0.1, 500),
    "visualize": (0.1, 200),
    "manipulate": (0.02, 200),
    "interpolate": (0.1, 500),
}
DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def default_step_size(eps: float, steps: int) -> float:
    """``2.5 * eps / steps``: enough to reach the boundary of the ball and move along it."""
    return STEP_FACTOR * eps / max(steps, 1)


def eps_name(eps: float) -> str:
    """A metric-name suffix for an eps (``0.5`` -> ``eps0.5``)."""
    return f"eps{eps:g}"
