"""Slow quality checks of class inversion on the digits benchmark (python -m pytest -m slow).

They compute what the README's class-inversion table reports, at the same settings.
"""

import pytest

from benchmarks.class_inversion_table import OPTIONS, run

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("target", ["digits:cnn", "digits:vit", "digits:mlp"])
def test_pii_images_are_recognised_above_chance_on_every_architecture(target):
    metrics = run(target, "pii", OPTIONS["pii"])
    assert metrics["top1_verifiers"] > 0.15  # chance is 0.10
    assert metrics["top5_verifiers"] > 0.6  # chance is 0.50


def test_pii_beats_deepdream_on_the_cnn():
    pii = run("digits:cnn", "pii", OPTIONS["pii"])
    deepdream = run("digits:cnn", "deepdream", OPTIONS["deepdream"])
    assert pii["top1_verifiers"] > deepdream["top1_verifiers"]
