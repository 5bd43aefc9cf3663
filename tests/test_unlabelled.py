"""Unlabelled images have no verifier accuracy: absent, never 0."""

import json

import pytest
import torch
from PIL import Image

from inversion.data.digits import load_digits_split
from inversion.metrics.scorer import ImageScorer
from model_inversion import evaluate


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digits_split("test")
    return images[:24], labels[:24]


def test_evaluate_folder_of_flat_images_reports_no_accuracy(tmp_path, digits):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, image in enumerate(digits[0]):
        Image.fromarray((image[0] * 255).round().byte().numpy()).save(flat / f"{i:03d}.png")
    out = tmp_path / "out"
    results = evaluate.main(
        ["folder", str(flat), "--verifiers", "digits:vit", "--feature", "none", "--out", str(out)]
    )
    assert results["images"] == len(digits[0])
    assert not [key for key in results if key.startswith(("top1", "top5"))]
    (saved,) = out.glob("*.json")
    written = json.loads(saved.read_text())
    assert "top1" not in json.dumps(written) and "top5" not in json.dumps(written)
    header = (out / "results.md").read_text().splitlines()[0]
    assert "top-1" not in header and "top-5" not in header  # no column without a number


@pytest.mark.parametrize("labels", ["none", "all -1", "below 0"])
def test_scorer_without_labels_has_no_accuracy_but_is_and_fid(digits, labels):
    images, real = digits
    given = {
        "none": None,
        "all -1": torch.full_like(real, -1),
        "below 0": torch.full_like(real, -2),
    }[labels]
    scorer = ImageScorer(verifiers=["digits:vit"], feature="digits:resnet", splits=1)
    scorer.update(images, given, reference=images)
    results = scorer.compute()
    assert not [key for key in results if key.startswith(("top1", "top5"))]
    assert "fid_digits-resnet" in results and "is_digits-resnet" in results


def test_scorer_with_some_labels_scores_only_those(digits):
    images, real = digits
    labels = real.clone()
    labels[::2] = -1
    scorer = ImageScorer(verifiers=["digits:vit"], feature=None)
    scorer.update(images[:8], torch.full_like(real[:8], -1))  # an unlabelled batch too
    scorer.update(images, labels)
    results = scorer.compute()
    expected = ImageScorer(verifiers=["digits:vit"], feature=None)
    expected.update(images[1::2], real[1::2])
    assert results["top1_digits-vit"] == pytest.approx(expected.compute()["top1_digits-vit"])
