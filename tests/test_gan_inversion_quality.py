"""Slow quality checks of GAN inversion on the digits benchmark (python -m pytest -m slow).

They compute what the gan_inversion table of docs/layerwise.md reports, from the same
cached encoders (``benchmarks.gan_inversion_table``: one per loss and seed; a cold build
takes about 4 minutes on 2 cores), and check that each claim the page makes is the
one the intervals over seeds allow, not merely the one a single seed showed.
"""

import pytest

from benchmarks.gan_inversion_table import DEFAULT, cells, claims
from benchmarks.intervals import estimate, paired_difference
from benchmarks.update_readme import page_with_marker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rows():
    """The table's rows by label, each over the seeds."""
    return {c.label: c for c in cells()}


def test_the_page_states_exactly_the_claims_the_intervals_allow(rows):
    page = page_with_marker("gan_inversion")  # the page that holds the table
    text = page.read_text()
    for line in claims(list(rows.values())):
        statement = line.split(" (")[0]  # the claim, without its interval's digits
        assert statement in text, f"{page.name} lacks: {statement}"


def test_the_default_encoder_recovers_codes(rows):
    # a random code has cosine about 0 with the true one
    assert estimate(rows[DEFAULT].values("latent_cosine")).low > 0.7


def test_the_default_encoder_repairs_damaged_samples(rows):
    default = rows[DEFAULT]
    gain = paired_difference(default.values("psnr_repaired"), default.values("psnr_corrupted"))
    assert gain.low > 0.0  # PSNR repaired minus damaged (dB), paired over the seeds
