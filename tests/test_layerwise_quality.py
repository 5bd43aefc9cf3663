"""Slow quality checks of layer-wise inversion (python -m pytest -m slow).

They score what the layerwise table of docs/layerwise.md reports, with the same functions
and settings and from the same cached cells (``benchmarks.layerwise_table``; trained stacks
and their scores are cached per recipe and seed, so after the table command they are only
read), and check that each claim the page makes is the one the intervals over seeds allow,
at the learning rates the sweep chose and the compute the page states.
The GAN-inversion checks are in tests/test_gan_inversion_quality.py.
"""

import pytest

from benchmarks.intervals import estimate
from benchmarks.layerwise_table import (
    CUTS,
    DEEP,
    DEEP_DEPTHS,
    DEEP_TARGET,
    LAYERS,
    MAIN_DEPTHS,
    ablation_rows,
    claims,
    compute_table,
    deep_rows,
    lr_table,
    main_rows,
    values,
)
from benchmarks.update_readme import page_with_marker

pytestmark = pytest.mark.slow
STAGE2 = 3  # depth: stem, stage1, stage2


@pytest.fixture(scope="module")
def rows():
    """The main table, the ablation and the deep table (cached cells, every seed)."""
    return main_rows(), ablation_rows(), deep_rows()


def test_the_page_states_exactly_the_claims_the_intervals_allow(rows):
    page = page_with_marker("layerwise")
    text = page.read_text()
    for line in claims(*rows):
        statement = line.split(" (")[0]  # the claim, without its interval's digits
        assert statement in text, f"{page.name} lacks: {statement}"


def test_the_page_states_the_learning_rates_and_the_compute_of_every_inverter(rows):
    text = page_with_marker("layerwise").read_text()
    assert lr_table() in text  # the sweep's choices, from its cached validation cells
    assert compute_table(MAIN_DEPTHS, LAYERS) in text
    assert compute_table(DEEP_DEPTHS, CUTS[DEEP_TARGET], **DEEP) in text


def test_real_digits_are_recognisable_after_inversion_from_stage2(rows):
    main, _, _ = rows
    cell = main["smooth", "layerwise"][STAGE2]
    assert estimate(values(cell, "agree")).low > 0.8  # chance is about 0.1
    assert estimate(values(cell, "psnr")).low > 17.0
