import fractions

import numpy as np
import pytest
import torch
import torch_fidelity
from torch_fidelity.metric_fid import fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

import evaluate
from inversion import InversionError
from inversion.data.digits import load_digits_split
from inversion.metrics import (
    ClassifierFeatures,
    FrechetDistance,
    InceptionFeatures,
    InceptionScore,
    KernelDistance,
    frechet_distance,
    inception_score,
    kernel_distance,
)
from inversion.metrics.reference import reference_statistics


def test_evaluate_folder_matches_torch_fidelity_defaults(
    inception_weights, two_image_folders, tmp_path
):
    """The issue's parity bar: same folders, same weights, torch-fidelity's defaults.

    IS with 10 shuffled splits (seed 2020); KID with its 100 subsets, of the size ours
    clamps to (24 images per folder; torch-fidelity refuses fewer than its 1000 unless
    told the size).
    """
    fake, real = two_image_folders
    ours = evaluate.main(
        [
            "folder",
            str(fake),
            "--reference",
            str(real),
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
        kid=True,
        kid_subset_size=24,
        cuda=False,
        verbose=False,
        feature_extractor_weights_path=str(inception_weights),
    )
    assert theirs["inception_score_mean"] > 1.01  # the random Inception is informative
    assert theirs["frechet_inception_distance"] > 1.0
    assert theirs["kernel_inception_distance_mean"] > 10 * theirs["kernel_inception_distance_std"]
    assert ours["is"] == pytest.approx(theirs["inception_score_mean"], rel=1e-3)
    assert ours["is_std"] == pytest.approx(theirs["inception_score_std"], rel=1e-3, abs=1e-6)
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-3)
    assert ours["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-3)
    # every subset is the whole folder: the exact std is 0, torch-fidelity's float32 sums
    # leave round-off of about 1e-7 of the mean
    kid_scale = theirs["kernel_inception_distance_mean"]
    assert ours["kid_std"] == pytest.approx(
        theirs["kernel_inception_distance_std"], abs=1e-6 * kid_scale
    )


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


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("splits", [1, 3, 10])
def test_inception_score_matches_torch_fidelity(splits, shuffle):
    logits = torch.randn(53, 12) * 3
    expected = isc_features_to_metric(logits, splits=splits, shuffle=shuffle)
    mean, std = inception_score(logits, splits, shuffle=shuffle)
    assert float(mean) == pytest.approx(expected["inception_score_mean"], rel=1e-9)
    assert float(std) == pytest.approx(expected["inception_score_std"], rel=1e-6, abs=1e-12)
    metric = InceptionScore(splits, shuffle=shuffle)
    for chunk in logits.split(20):
        metric.update(chunk)
    assert float(metric.compute()[0]) == pytest.approx(float(mean), rel=1e-6)


def test_inception_score_metric_puts_samples_back_in_index_order():
    # class-ordered logits: consecutive splits would each hold about one class
    logits = torch.eye(6).repeat_interleave(8, dim=0) * 8 + torch.randn(48, 6)
    expected = inception_score(logits, splits=4)
    metric = InceptionScore(4)
    scrambled = torch.randperm(48, generator=torch.Generator().manual_seed(0))
    for chunk in scrambled.split(7):
        metric.update(logits[chunk], index=chunk)
    torch.testing.assert_close(metric.compute()[0], expected[0].float())
    shuffled_mean = float(expected[0])
    unshuffled_mean = float(inception_score(logits, splits=4, shuffle=False)[0])
    assert shuffled_mean > 4.0 > 2.0 > unshuffled_mean  # the shuffle is what makes it fair


def test_inception_score_metric_restarts_its_numbering_on_reset():
    logits = torch.randn(30, 5) * 3
    metric = InceptionScore(3)
    metric.update(torch.randn(30, 5))
    metric.compute()
    metric.reset()
    metric.update(logits[:10])
    metric.update(logits[10:])
    assert float(metric.compute()[0]) == pytest.approx(float(inception_score(logits, 3)[0]))


def _torch_fidelity_kid(fake, real, subset_size):
    return kid_features_to_metric(
        fake,
        real,
        kid_subsets=100,
        kid_subset_size=subset_size,
        kid_kernel="poly",
        kid_kernel_poly_degree=3,
        kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1,
        rng_seed=2020,
        verbose=False,
    )


@pytest.mark.parametrize("subset_size", [50, 1000])
def test_kernel_distance_matches_torch_fidelity(subset_size):
    generator = torch.Generator().manual_seed(0)
    fake = torch.rand(130, 32, generator=generator, dtype=torch.float64)
    real = torch.rand(110, 32, generator=generator, dtype=torch.float64) * 1.2
    expected = _torch_fidelity_kid(fake, real, min(subset_size, 110))  # ours clamps
    mean, std = kernel_distance(fake, real, subset_size=subset_size)
    assert expected["kernel_inception_distance_mean"] > 0.01
    assert float(mean) == pytest.approx(expected["kernel_inception_distance_mean"], rel=1e-9)
    assert float(std) == pytest.approx(expected["kernel_inception_distance_std"], rel=1e-6)
    metric = KernelDistance(subset_size=subset_size)
    for chunk in torch.randperm(130, generator=generator).split(40):
        metric.update(fake[chunk], index=chunk)
    metric.update(real[:60], real=True)
    metric.update(real[60:], real=True)
    kid, kid_std = metric.compute()
    assert float(kid) == pytest.approx(float(mean), rel=1e-5)
    assert float(kid_std) == pytest.approx(float(std), rel=1e-4)
    precomputed = KernelDistance(subset_size=subset_size)
    precomputed.update(fake)
    precomputed.set_reference(real)
    assert float(precomputed.compute()[0]) == pytest.approx(float(mean), rel=1e-5)


def test_kernel_distance_is_about_zero_for_one_distribution_and_needs_two_images():
    x = torch.randn(400, 16, dtype=torch.float64)
    same, _ = kernel_distance(x[:200], x[200:], subsets=20)
    far, _ = kernel_distance(x[:200], x[200:] + 1.0, subsets=20)
    assert abs(float(same)) < 0.05 * float(far)
    with pytest.raises(InversionError, match="at least 2 produced"):
        kernel_distance(x[:1], x, subsets=2)


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


def test_evaluate_inception_score_does_not_depend_on_image_order(tmp_path):
    """The 360 test digits, class by class (class folders) and shuffled (flat): one IS."""
    from PIL import Image

    images, labels = load_digits_split("test")
    order = torch.argsort(labels, stable=True)
    shuffled = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    for i, j in enumerate(order.tolist()):
        folder = tmp_path / "ordered" / str(int(labels[j]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((images[j, 0] * 255).round().byte().numpy()).save(folder / f"{i:03d}.png")
    (tmp_path / "shuffled").mkdir()
    for i, j in enumerate(shuffled.tolist()):
        pixels = (images[j, 0] * 255).round().byte().numpy()
        Image.fromarray(pixels).save(tmp_path / "shuffled" / f"{i:03d}.png")
    scores = [
        evaluate.main(
            [
                "folder",
                str(tmp_path / name),
                "--feature",
                "digits:resnet",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "results"),
            ]
        )["is_digits-resnet"]
        for name in ("ordered", "shuffled")
    ]
    assert scores[0] > 5.0  # consecutive splits of the class-ordered folder gave about 1.1
    assert scores[0] == pytest.approx(scores[1], rel=0.01)
