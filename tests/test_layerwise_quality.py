"""Slow quality checks of layer-wise and GAN inversion (python -m pytest -m slow).

They compute what the README's layerwise and gan_inversion tables report, with the same
functions and settings (trained stacks and encoders are cached by recipe hash, so after
the table command they are only evaluated).
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from gan_inversion_table import run as run_gan  # noqa: E402
from layerwise_table import run  # noqa: E402

pytestmark = pytest.mark.slow
STAGE2 = 3  # depth: stem, stage1, stage2


@pytest.fixture(scope="module")
def smooth():
    """Smooth-noise inverters from stage2: re-synced, blockwise only, naive."""
    return {m: run("smooth", m, (STAGE2,))[STAGE2] for m in ("layerwise", "blockwise", "naive")}


def test_real_digits_are_recognisable_after_inversion_from_stage2(smooth):
    assert smooth["layerwise"]["agree"] > 0.8  # chance is about 0.1
    assert smooth["layerwise"]["psnr"] > 17.0


def test_the_resync_phase_improves_the_stack(smooth):
    assert smooth["layerwise"]["psnr"] > smooth["blockwise"]["psnr"] + 2.0
    assert smooth["layerwise"]["agree"] > smooth["blockwise"]["agree"]


def test_layerwise_comes_close_to_the_naive_decoder(smooth):
    # the paper's claim that layer-wise training beats an end-to-end decoder is NOT
    # reproduced on digits (README): the naive decoder is about 2 dB better at stage2;
    # what holds is that the layer-wise stack recognisably inverts as often
    assert smooth["layerwise"]["psnr"] > smooth["naive"]["psnr"] - 3.0
    assert smooth["layerwise"]["agree"] > smooth["naive"]["agree"] - 0.05


def test_the_gan_encoder_recovers_codes_and_repairs_samples():
    results = run_gan()
    assert results["latent_cosine"] > 0.7  # a random code has cosine about 0
    assert results["psnr_repaired"] > results["psnr_corrupted"] + 1.0
