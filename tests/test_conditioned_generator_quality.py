"""Slow quality checks of the conditioned generator on digits (python -m pytest -m slow).

They compute what the conditioned-generator table of docs/conditioned_generator.md
reports, with the same run function and budget (one seed: no claim ranks the ingredients,
see the page); the trained generators are cached and shared with the table command
(``python -m benchmarks.update_readme conditioned_generator``), so after it (or a first
slow run) only the scoring runs.
"""

import pytest

from benchmarks.conditioned_generator_table import DEFAULTS, PLAIN, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def plain() -> dict[str, float]:
    """One-hot conditioning, no dropout, no cosine term, on digits:cnn."""
    return run("digits:cnn", PLAIN)


@pytest.fixture(scope="module")
def defaults() -> dict[str, float]:
    """The module's defaults (hidden encoding, dropout, cosine term) on digits:cnn."""
    return run("digits:cnn", DEFAULTS)


@pytest.mark.parametrize("target", ["digits:vit", "digits:mlp"])
def test_defaults_reach_the_target_classes_on_other_architectures(target):
    metrics = run(target, DEFAULTS)
    assert metrics["target_top1"] > 0.7  # chance is 0.10
    assert metrics["top1_verifiers"] > 0.15


def test_defaults_keep_target_accuracy_and_are_more_diverse_than_plain(plain, defaults):
    assert defaults["target_top1"] >= plain["target_top1"] - 0.05
    assert defaults["feature_cosine"] < plain["feature_cosine"] - 0.02


def test_a_fifth_of_the_samples_are_adversarial_for_the_verifiers(defaults):
    assert defaults["adversarial_rate"] > 0.2
