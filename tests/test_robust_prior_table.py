"""The plumbing of the robust-prior table: its claims and its seeded digits (no table run)."""

import torch

from benchmarks.intervals import SEEDS
from benchmarks.robust_prior_table import (
    ACCURACIES,
    CLAIMED,
    LAYERS,
    Cell,
    claims,
    held_out_digits,
)


def fake_cells(robust_shift: float) -> tuple[list[Cell], list[Cell]]:
    """Cells whose robust model scores ``robust_shift`` above the standard one at each seed."""
    keys = [key for key, _ in ACCURACIES] + list(CLAIMED)

    def runs(shift: float) -> list[dict[str, float]]:
        return [{key: 0.5 + 0.01 * seed + shift for key in keys} for seed in SEEDS]

    robustness = [Cell("standard", None, runs(0.0)), Cell("robust", None, runs(robust_shift))]
    inversion = [
        Cell(name, layer, runs(shift))
        for layer in LAYERS
        for name, shift in (("standard", 0.0), ("robust", robust_shift))
    ]
    return robustness, inversion


def test_claims_follow_the_paired_intervals():
    better = claims(*fake_cells(0.1))
    assert len(better) == len(ACCURACIES) + len(LAYERS) * len(CLAIMED)
    assert all("the robust CNN beats the standard CNN (" in line for line in better)
    worse = claims(*fake_cells(-0.1))
    assert all("the standard CNN beats the robust CNN (" in line for line in worse)
    same = claims(*fake_cells(0.0))
    assert all("no difference found" in line for line in same)
    # the slow test cuts each claim at its first " (": the statement itself has none
    assert all(line.count(" (") == 1 for line in better + same)


def test_held_out_digits_follow_the_seed():
    images, labels = held_out_digits(3, seed=0)
    assert images.shape[0] == 30 and torch.equal(labels, torch.arange(10).repeat_interleave(3))
    again, _ = held_out_digits(3, seed=0)
    other, _ = held_out_digits(3, seed=1)
    assert torch.equal(images, again) and not torch.equal(images, other)
