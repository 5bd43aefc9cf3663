"""Slow quality checks of the conditioned generator on digits (python -m pytest -m slow).

They compute what the conditioned-generator table of docs/conditioned_generator.md
reports, from the same cached cells (``benchmarks.conditioned_generator_table``: one
trained generator per target, recipe and seed, shared with ``python -m
benchmarks.update_readme conditioned_generator``; a cold build takes the time the page
states, after it only the scoring runs), and check that each claim the page makes is the
one the intervals over seeds allow, not merely the one a single seed showed.
"""

import pytest

from benchmarks.conditioned_generator_table import (
    CHANCE_TOP1,
    Cell,
    ablation_cells,
    claims,
    main_cells,
)
from benchmarks.intervals import estimate, paired_difference
from benchmarks.update_readme import page_with_marker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def main() -> list[Cell]:
    """The defaults on every target, over the seeds."""
    return main_cells()


@pytest.fixture(scope="module")
def ablation() -> list[Cell]:
    """The ablation rows on digits:cnn, over the seeds."""
    return ablation_cells()


def test_the_page_states_exactly_the_claims_the_intervals_allow(main, ablation):
    page = page_with_marker("conditioned_generator")
    text = page.read_text()
    for line in claims(main, ablation):
        statement = line.split(" (")[0]  # the claim, without its interval's digits
        assert statement in text, f"{page.name} lacks: {statement}"


def test_the_defaults_reach_the_target_classes_on_every_architecture(main):
    for cell in main:
        assert estimate(cell.values("target_top1")).low > 0.5, cell.target  # chance is 0.10
        assert estimate(cell.values("top1_verifiers")).low > CHANCE_TOP1, cell.target


def test_the_defaults_keep_the_targets_accuracy_of_the_plain_generator(ablation):
    by_name = {cell.label: cell for cell in ablation}
    plain, defaults = by_name["plain"], by_name["defaults"]
    kept = paired_difference(defaults.values("target_top1"), plain.values("target_top1"))
    assert kept.low > -0.05  # the spread (claimed on the page) costs the target little


def test_a_fifth_of_the_default_samples_or_more_are_adversarial_for_the_verifiers(main):
    for cell in main:
        assert estimate(cell.values("adversarial_rate")).low > 0.2, cell.target
