import fractions

import numpy as np
import pytest
import torch
import torch_fidelity
from torch_fidelity.metric_fid import fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric

import evaluate
from inversion import InversionError
from inversion.metrics import (
    ClassifierFeatures,
    FrechetDistance,
    InceptionFeatures,
    InceptionScore,
    frechet_distance,
    inception_score,
)
from inversion.metrics.reference import reference_statistics


def test_evaluate_folder_matches_torch_fidelity(inception_weights, two_image_folders, tmp_path):
    """The issue's parity bar: same folders, same weights, same splits, no shuffle."""
    fake, real = two_image_folders
    ours = evaluate.main(
        [
            "folder",
            str(fake),
            "--reference",
            str(real),
            "--splits",
            "4",
            "--inception-weights",
            str(inception_weights),
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "results"),
        ]
    )
    theirs = torch_fidelity.calculate_metrics(
        input1=str(fake),
        input2=str(real),
        fid=True,
        isc=True,
        cuda=False,
        verbose=False,
        feature_extractor_weights_path=str(inception_weights),
        isc_splits=4,
        samples_shuffle=False,
        batch_size=16,
    )
    assert theirs["inception_score_mean"] > 1.01  # the random Inception is informative
    assert theirs["frechet_inception_distance"] > 1.0
    assert ours["is"] == pytest.approx(theirs["inception_score_mean"], rel=1e-3)
    assert ours["is_std"] == pytest.approx(theirs["inception_score_std"], rel=1e-3, abs=1e-6)
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-3)


def test_grayscale_is_replicated_for_inception(inception_weights):
    extractor = InceptionFeatures(str(inception_weights))
    gray = torch.rand(2, 1, 32, 32)
    pool_gray, logits_gray = extractor(gray)
    pool_rgb, logits_rgb = extractor(gray.expand(-1, 3, -1, -1))
    torch.testing.assert_close(pool_gray, pool_rgb)
    torch.testing.assert_close(logits_gray, logits_rgb)


def test_frechet_distance_matches_torch_fidelity_formula():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 8)), rng.normal(0.5, 2.0, size=(150, 8))
    metric = FrechetDistance(8)
    metric.update(torch.from_numpy(a[:120]))
    metric.update(torch.from_numpy(a[120:]))
    metric.update(torch.from_numpy(b), real=True)
    expected = fid_statistics_to_metric(
        {"mu": a.mean(0), "sigma": np.cov(a, rowvar=False)},
        {"mu": b.mean(0), "sigma": np.cov(b, rowvar=False)},
        verbose=False,
    )["frechet_inception_distance"]
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-5)
    mean, cov = metric.statistics(real=True)
    precomputed = FrechetDistance(8)
    precomputed.update(torch.from_numpy(a))
    precomputed.set_reference(mean, cov)
    assert float(precomputed.compute()) == pytest.approx(expected, rel=1e-5)


def test_frechet_distance_of_a_distribution_to_itself_is_zero():
    x = torch.randn(500, 4, dtype=torch.float64)
    cov = torch.cov(x.T)
    assert float(frechet_distance(x.mean(0), cov, x.mean(0), cov)) == pytest.approx(0, abs=1e-6)


def test_fid_needs_two_images():
    metric = FrechetDistance(4)
    metric.update(torch.randn(1, 4))
    metric.update(torch.randn(5, 4), real=True)
    with pytest.raises(InversionError, match="at least 2"):
        metric.compute()


@pytest.mark.parametrize("splits", [1, 3, 10])
def test_inception_score_matches_torch_fidelity_without_shuffle(splits):
    logits = torch.randn(53, 12) * 3
    expected = isc_features_to_metric(logits, splits=splits, shuffle=False)
    mean, std = inception_score(logits, splits)
    assert float(mean) == pytest.approx(expected["inception_score_mean"], rel=1e-9)
    assert float(std) == pytest.approx(expected["inception_score_std"], rel=1e-6, abs=1e-12)
    metric = InceptionScore(splits)
    for chunk in logits.split(20):
        metric.update(chunk)
    assert float(metric.compute()[0]) == pytest.approx(float(mean), rel=1e-6)


def test_inception_score_of_confident_diverse_predictions_is_the_class_count():
    logits = torch.eye(10).repeat(3, 1) * 50
    assert float(inception_score(logits, splits=1)[0]) == pytest.approx(10, rel=1e-4)
    assert float(inception_score(torch.zeros(30, 10), splits=1)[0]) == pytest.approx(1.0)


def test_inception_score_needs_enough_images():
    with pytest.raises(InversionError, match="lower the number of splits"):
        inception_score(torch.randn(5, 10), splits=10)


def test_missing_inception_weights_offline_says_how_to_supply(monkeypatch, tmp_path):
    monkeypatch.delenv("INVERSION_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(InversionError, match="inception_weights=PATH"):
        InceptionFeatures()
    with pytest.raises(InversionError, match="not found"):
        InceptionFeatures(str(tmp_path / "nope.pth"))


def test_inception_weights_from_environment(monkeypatch, inception_weights):
    monkeypatch.setenv("INVERSION_INCEPTION_WEIGHTS", str(inception_weights))
    assert InceptionFeatures().name == "inception"


def test_unsafe_inception_weights_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    # an arbitrary pickled object (recent torch allow-lists builtin exceptions)
    torch.save({"weights": fractions.Fraction(1, 3)}, path)
    with pytest.raises(InversionError, match="weights_only"):
        InceptionFeatures(str(path))


def test_classifier_features_are_named_in_metrics():
    extractor = ClassifierFeatures("digits:resnet")
    assert extractor.metric_name("fid") == "fid_digits-resnet"
    pool, logits = extractor(torch.rand(3, 1, 32, 32))
    assert pool.shape == (3, 96) and logits.shape == (3, 10)


def test_reference_statistics_are_cached_and_follow_the_folder(
    two_image_folders, monkeypatch, tmp_path
):
    extractor = ClassifierFeatures("digits:cnn")  # from the normal zoo cache
    monkeypatch.setenv("INVERSION_CACHE", str(tmp_path / "cache"))
    _, real = two_image_folders
    mean, cov, n = reference_statistics(extractor, str(real), progress=False)
    files = list((tmp_path / "cache" / "fid_reference").glob("*.pt"))
    assert n == 24 and len(files) == 1 and cov.shape == (128, 128)
    calls = []
    monkeypatch.setattr("inversion.metrics.reference._write_statistics", lambda *a: calls.append(a))
    again = reference_statistics(extractor, str(real), progress=False)
    assert not calls and torch.equal(again[0], mean)
    (real / "999.png").write_bytes((real / "000.png").read_bytes())
    with pytest.raises(FileNotFoundError):  # a new key: recomputation was asked for
        reference_statistics(extractor, str(real), progress=False)
    assert len(calls) == 1
    (real / "999.png").unlink()


def test_mixed_image_sizes_are_one_clear_error(tmp_path):
    from PIL import Image

    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("RGB", (16, 16)).save(folder / "a.png")
    Image.new("RGB", (20, 16)).save(folder / "b.png")
    with pytest.raises(InversionError, match="share one size"):
        evaluate.main(
            [
                "folder",
                str(folder),
                "--feature",
                "digits:cnn",
                "--no-is",
                "--reference",
                "digits:test",
                "--out",
                str(tmp_path / "out"),
            ]
        )
