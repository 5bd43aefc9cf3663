"""benchmarks/peers.py at a tiny size: each comparison agrees where the two tools must.

Each test runs only when its peer is installed (``pip install -e ".[peers]"`` and
``pip install --no-deps torchattacks``); no assertion is about time.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks import peers
from benchmarks.update_readme import TABLES, page_with_marker
from inversion import InversionError, build_classifier
from inversion.data.digits import load_digits_split
from inversion.errors import exit_on_user_error

# agreement with other tools; torch-fidelity's InceptionV3 takes minutes on 2 cores
pytestmark = pytest.mark.slow

N = 48


@pytest.fixture(scope="module")
def model():
    return build_classifier("digits:cnn").freeze()


@pytest.fixture(scope="module")
def test_digits():
    images, labels = load_digits_split("test")
    return images[:N], labels[:N]


def test_pgd_equals_torchattacks_and_foolbox_at_the_same_settings(model, test_digits):
    pytest.importorskip("torchattacks")
    pytest.importorskip("foolbox")
    images, labels = test_digits
    rows = peers.pgd_rows(model, images, labels, "cpu", repeats=1, steps=3)
    assert [row.peer.split()[0] for row in rows] == ["torchattacks", "foolbox"] * 2
    clean = peers.correct(model, images, labels).float().mean().item()
    for row in rows:
        ours, theirs, agree = row.values
        assert ours < clean - 0.1  # the attack does something at these settings
        assert abs(ours - theirs) <= 2 / N  # the same robust accuracy within 2 images
        assert agree >= 1 - 2 / N
        assert row.timing is not None and row.timing[0] > 0 and row.timing[1] > 0
        assert "not installed" not in row.markdown()


def test_a_missing_peer_gives_a_row_that_says_so(model, test_digits, monkeypatch):
    monkeypatch.setattr(peers, "installed", lambda distribution, module: None)
    images, labels = test_digits
    rows = peers.pgd_rows(model, images[:4], labels[:4], "cpu", repeats=1, steps=1)
    rows += peers.uap_rows(model, images[:4], images[:4], "cpu")
    assert len(rows) == 5
    for row in rows:
        assert "not installed" in row.markdown() and row.timing is None
    assert "pip install --no-deps torchattacks" in rows[0].markdown()


def test_is_fid_kid_equal_torch_fidelity(inception_weights, tmp_path):
    pytest.importorskip("torch_fidelity")
    test, val = load_digits_split("test"), load_digits_split("val")  # 2 images a split
    fake = peers.write_digits_folder(tmp_path / "fake", test[0][:20], test[1][:20])
    real = peers.write_digits_folder(tmp_path / "real", val[0][:6], val[1][:6])
    rows = peers.fidelity_rows(fake, real, str(inception_weights), 20, "cpu", repeats=1)
    assert [row.work.split(",")[0] for row in rows] == ["IS", "FID", "KID"]
    assert "subsets of 6" in rows[2].work  # KID subsets of the smaller folder's size
    for row in rows:
        ours, theirs, relative = row.values
        assert abs(theirs) > 0  # KID's unbiased estimate may be negative at 6 samples
        assert relative <= 1e-3
        assert ours == pytest.approx(theirs, rel=1e-3)
    assert rows[0].timing is not None and rows[1].timing is None  # one call, timed once


def test_art_pattern_lies_in_the_ball_and_its_fooling_rate_is_ours(model):
    pytest.importorskip("art")
    proxy = load_digits_split("train")[0][:16]
    eps = peers.UAP_EPS / 255
    delta, art_rate = peers.art_pattern(model, proxy, eps, passes=1, device="cpu")
    assert delta.shape == (1, *proxy.shape[1:])
    assert delta.abs().max() <= eps + 1e-6
    assert delta.abs().max() > 0
    # ART scores x + p clipped against the clean prediction, as our fooling rate does
    ours = peers.fooled(model, delta, proxy).float().mean().item()
    assert ours == pytest.approx(art_rate, abs=1 / len(proxy))


def test_uap_row_scores_both_patterns_on_the_same_images(model, test_digits):
    pytest.importorskip("art")
    proxy = load_digits_split("train")[0][:16]
    (row,) = peers.uap_rows(model, proxy, test_digits[0], "cpu", passes=1)
    ours, theirs, agree = row.values
    assert 0 <= ours <= 1 and 0 <= theirs <= 1
    # images fooled by one pattern only are at least the gap between the two rates
    assert agree <= 1 - abs(ours - theirs) + 1e-9
    assert row.timing is not None


def test_bad_settings_are_one_clear_error(capsys):
    with pytest.raises(InversionError, match="digits zoo model"):
        peers.Settings(model="cifar:resnet18").check()
    with pytest.raises(InversionError, match="Unknown parts"):
        peers.Settings(parts=("pgd", "gan")).check()
    with pytest.raises(SystemExit) as exit_info:
        exit_on_user_error(lambda: peers.main(["--uap-attacker", "cw"]))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: Unknown ART attacker")


def test_the_docs_have_the_peers_block():
    assert "peers" in TABLES
    text = page_with_marker("peers").read_text()
    assert "<!-- table:peers -->" in text and "<!-- /table:peers -->" in text


def test_timing_loop_keeps_the_latest_result():
    results: dict = {}
    counter = iter(range(10))
    loop = peers.call_loop(lambda: next(counter), results, "x", "cpu")
    assert loop(0) == 0.0 and "x" not in results
    assert loop(2) >= 0 and results["x"] == 1
    assert torch.isfinite(torch.tensor(loop(1)))
