"""Slow quality checks of the robust prior on the digits benchmark (python -m pytest -m slow).

They compute what the robust-prior tables of docs/robust_prior.md report, at the same settings.
"""

import pytest

from benchmarks.robust_prior_table import MODELS, inversion_metrics, robust_accuracy

pytestmark = pytest.mark.slow


def test_adversarial_training_buys_robustness_at_a_small_clean_cost():
    clean = {name: robust_accuracy(spec, 0.0) for name, spec in MODELS.items()}
    attacked = {name: robust_accuracy(spec, 1.0) for name, spec in MODELS.items()}
    assert clean["robust"] > 0.9 and clean["standard"] - clean["robust"] < 0.08
    assert attacked["standard"] < 0.2 and attacked["robust"] > 0.7


@pytest.mark.parametrize("layer", ["penultimate", "stage3"])
def test_robust_representations_invert_to_recognisable_digits(layer):
    """The paper's claim: inverting a robust model's representation recovers the input."""
    standard = inversion_metrics(MODELS["standard"], layer)
    robust = inversion_metrics(MODELS["robust"], layer)
    assert robust["top1_verifiers"] > standard["top1_verifiers"] + 0.2
    assert robust["ssim"] > standard["ssim"] + 0.05
    assert robust["psnr"] > standard["psnr"]
    assert robust["agree_verifiers"] > standard["agree_verifiers"]
