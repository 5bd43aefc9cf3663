"""Slow quality checks of dominant patterns on the digits benchmark (python -m pytest -m slow).

They compute what the dominant-patterns tables of docs/dominant_patterns.md report, at the
same settings and from the same cached patterns (``benchmarks.dominant_patterns_table``:
eps 16/255, digits:cnn, every method at equal compute, every seed of ``SEEDS``, each at the
learning rate its validation sweep chose), and check that each claim the page makes is the
one the intervals over seeds allow.
"""

import pytest
import torch

from benchmarks import dominant_patterns_table as table
from benchmarks import sweep
from benchmarks.intervals import SEEDS
from benchmarks.update_readme import page_with_marker

pytestmark = pytest.mark.slow


def test_the_page_states_exactly_the_claims_the_intervals_allow():
    page = page_with_marker("dominant_patterns")
    text = page.read_text()
    lines = table.claims(table.method_cells(table.MAIN_EPS), table.downstream_cells()[1])
    for line in lines:
        statement = line.split(" (")[0]  # the claim, without its interval's digits
        assert statement in text, f"{page.name} lacks: {statement}"
    block = text.split("<!-- table:dominant_patterns -->")[1].split("<!-- /table:")[0]
    stated = [
        line
        for line in block.splitlines()
        if line.startswith("- ") and ("beats" in line or "no difference found" in line)
    ]
    assert len(stated) == len(lines), "the page states claims the intervals did not make"


def test_the_seeds_give_different_patterns_within_the_ball():
    for name, (_, proxy) in table.METHODS.items():
        patterns = [table.method_pattern(name, table.MAIN_EPS, seed).pattern for seed in SEEDS]
        assert all(p.abs().max() <= table.MAIN_EPS / 255 + 1e-6 for p in patterns), name
        if proxy != "none":  # GD-UAP sees no data: the same pattern at every seed
            assert not torch.equal(patterns[0], patterns[1]), name


def test_every_pattern_leaves_the_clean_predictions_alone():
    cells = table.method_cells(table.MAIN_EPS)
    for cell in cells.values():
        assert min(cell.values("clean_acc")) > 0.99, cell.name


def test_every_row_states_the_lr_its_sweep_chose():
    page = page_with_marker("dominant_patterns").read_text()
    for eps in table.EPSILONS:
        for name in table.METHODS:
            lr = table.tuned_lr(*table.METHODS[name], eps)
            reach = 1 + sweep.MAX_WIDENINGS  # the widened grid: LR x 2**k, |k| <= reach
            assert lr in [table.LR * 2.0**k for k in range(-reach, reach + 1)], name
            assert f"| {eps}/255 | {name} | {lr:g} |" in page, (eps, name)
