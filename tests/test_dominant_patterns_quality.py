"""Slow quality checks of dominant patterns on the digits benchmark (python -m pytest -m slow).

They compute what the dominant-patterns tables of docs/dominant_patterns.md report, at the
same settings and from the same cached patterns (eps 16/255, digits:cnn, 5 epochs of 40 batches).
"""

import pytest

from benchmarks.dominant_patterns_table import MAIN_EPS, TARGET, PatternRecipe, control, run
from inversion.data.digits import load_digits_split
from inversion.dominant_patterns import score_pattern
from inversion.models import build_classifier

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def random_control():
    images, labels = load_digits_split("test")
    model = build_classifier(TARGET).freeze()
    return score_pattern(model, control(MAIN_EPS), images, labels)


def test_on_noise_alone_the_dominant_pattern_beats_every_label_free_baseline(random_control):
    dominant = run(PatternRecipe(objective="dominant", proxy="noise"))
    baselines = [
        run(PatternRecipe(objective="sgd_uap", proxy="noise")),
        run(PatternRecipe(objective="cosine_uap", proxy="noise")),
        run(PatternRecipe(objective="gd_uap", proxy="none")),
    ]
    assert dominant["fooling_rate"] > random_control["fooling_rate"] + 0.1
    for baseline in baselines:
        assert dominant["fooling_rate"] > baseline["fooling_rate"] + 0.1


def test_on_digits_every_pattern_beats_the_control_and_the_dominant_pattern_dominates(
    random_control,
):
    dominant = run(PatternRecipe(objective="dominant", proxy="digits"))
    baselines = [
        run(PatternRecipe(objective=objective, proxy="digits"))
        for objective in ("sgd_uap", "cosine_uap")
    ]
    for scores in (dominant, *baselines):
        assert scores["fooling_rate"] > random_control["fooling_rate"] + 0.2
        assert scores["clean_acc"] > 0.99 and scores["perturbed_acc"] < 0.7
    assert all(dominant["dominance"] > b["dominance"] for b in baselines)
