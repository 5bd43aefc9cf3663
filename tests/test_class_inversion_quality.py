"""Slow quality checks of class inversion on the digits benchmark (python -m pytest -m slow).

They compute what the class-inversion table of the docs reports, at the same settings and
from the same cached cells (``benchmarks.class_inversion_table``; a cold build takes
about 40 minutes on 2 quiet cores), and check that each claim the page makes is the one the
intervals over seeds allow, not merely the one a single seed showed.
"""

import pytest

from benchmarks.class_inversion_table import claims, main_cells
from benchmarks.update_readme import page_with_marker

pytestmark = pytest.mark.slow


def test_the_page_states_exactly_the_claims_the_intervals_allow():
    page = page_with_marker("class_inversion")  # the page that holds the table
    text = page.read_text()
    for line in claims(main_cells()):
        statement = line.split(" (")[0]  # the claim, without its interval's digits
        assert statement in text, f"{page.name} lacks: {statement}"
