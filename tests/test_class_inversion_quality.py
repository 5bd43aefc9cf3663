"""Slow quality checks of class inversion on the digits benchmark (python -m pytest -m slow).

They compute what the README's class-inversion table reports, at the same settings and
from the same cached cells (``benchmarks.class_inversion_table``; a cold build takes
about 40 minutes on 2 quiet cores), and check that each claim the README makes is the one the
intervals over seeds allow, not merely the one a single seed showed.
"""

from pathlib import Path

import pytest

from benchmarks.class_inversion_table import claims, main_cells

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_states_exactly_the_claims_the_intervals_allow():
    readme = README.read_text()
    for line in claims(main_cells()):
        statement = line.split(" (")[0]  # the claim, without its interval's digits
        assert statement in readme, f"README lacks: {statement}"
