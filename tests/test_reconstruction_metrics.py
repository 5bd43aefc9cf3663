import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from inversion import InversionError, build_classifier
from inversion.data.digits import load_digits_split
from inversion.metrics.reconstruction import agreement, psnr, ssim
from inversion.metrics.scorer import ImageScorer
from inversion.visual import pair_grid
from model_inversion.callbacks import ImageGrid, ImageMetrics, produced_images
from model_inversion.datamodules import DigitsDataModule
from model_inversion.lightning_modules import RealImages


def test_psnr_matches_its_definition():
    originals = torch.full((2, 1, 8, 8), 0.5)
    images = originals.clone()
    images[0] += 0.1  # mse 0.01 -> 20 dB
    values = psnr(images, originals)
    assert values[0].item() == pytest.approx(20.0, abs=1e-4)
    assert math.isinf(values[1].item())


def test_ssim_is_one_for_identical_images_and_lower_for_noise():
    generator = torch.Generator().manual_seed(0)
    originals = torch.rand(3, 1, 32, 32, generator=generator)
    noisy = (originals + 0.3 * torch.randn(3, 1, 32, 32, generator=generator)).clamp(0, 1)
    assert torch.allclose(ssim(originals, originals), torch.ones(3), atol=1e-5)
    assert (ssim(noisy, originals) < 0.9).all()


def test_agreement_compares_predictions_not_labels():
    class FirstPixel(nn.Module):  # class 1 if the first pixel is bright
        def forward(self, x):
            bright = x[:, 0, 0, 0] > 0.5
            return torch.stack([(~bright).float(), bright.float()], dim=1)

    originals = torch.zeros(4, 1, 4, 4)
    originals[:2, 0, 0, 0] = 1.0
    images = originals.clone()
    images[0, 0, 0, 0] = 0.0  # changes class
    images[3, 0, 0, 0] = 0.2  # stays dark
    assert agreement(FirstPixel(), images, originals).tolist() == [0.0, 1.0, 1.0, 1.0]


def test_mismatched_pairs_are_one_clear_error():
    with pytest.raises(InversionError, match="same shape"):
        psnr(torch.rand(2, 1, 8, 8), torch.rand(3, 1, 8, 8))
    with pytest.raises(InversionError, match="'originals' has shape"):
        produced_images({"images": torch.rand(2, 1, 8, 8), "originals": torch.rand(2, 1, 4, 4)})


def test_scorer_reports_reconstruction_quality_per_verifier():
    images, labels = load_digits_split("test")
    images, labels = images[:40], labels[:40]
    scorer = ImageScorer(verifiers=["digits:vit", "digits:mlp"], feature=None)
    blurred = torch.nn.functional.avg_pool2d(images, 3, stride=1, padding=1)
    scorer.update(blurred, labels, originals=images)
    results = scorer.compute()
    assert results["psnr"] == pytest.approx(psnr(blurred, images).mean().item(), rel=1e-5)
    assert results["ssim"] == pytest.approx(ssim(blurred, images).mean().item(), rel=1e-5)
    vit = build_classifier("digits:vit").freeze()
    expected = agreement(vit, blurred, images).mean().item()
    assert results["agree_digits-vit"] == pytest.approx(expected, abs=1e-6)
    assert results["agree_verifiers"] == pytest.approx(
        (results["agree_digits-vit"] + results["agree_digits-mlp"]) / 2
    )
    scorer.reset()
    scorer.update(images, labels)  # no originals: no reconstruction metrics
    assert "psnr" not in scorer.compute()


def test_pair_grid_puts_originals_above_reconstructions():
    originals, images = torch.zeros(3, 1, 4, 4), torch.ones(3, 1, 4, 4)
    grid = pair_grid(images, originals, per_row=2)
    # two groups (2 + 1 pairs) -> four rows of cells, two columns
    assert grid.shape == (3, 2 + 4 * (4 + 2), 2 + 2 * (4 + 2))
    first_row, second_row = grid[0, 2:6, 2:6], grid[0, 8:12, 2:6]
    assert first_row.max() == 0.0 and second_row.min() == 1.0


def test_callbacks_log_reconstruction_metrics_and_pair_grid(tmp_path):
    class Blur(RealImages):
        def test_step(self, batch, batch_idx):
            images = batch[0]
            blurred = torch.nn.functional.avg_pool2d(images, 3, stride=1, padding=1)
            return {"images": blurred, "labels": batch[1], "originals": images}

    metrics = ImageMetrics(verifiers=["digits:mlp"], feature=None)
    grid = ImageGrid(per_class=6, max_classes=2)
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=pl.loggers.TensorBoardLogger(str(tmp_path), name="run"),
        callbacks=[metrics, grid],
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_test_batches=2,
    )
    trainer.test(Blur(), datamodule=DigitsDataModule(batch_size=20))
    results = metrics.results["test"]
    assert results["images"] == 40 and 15 < results["psnr"] < 40 and 0 < results["ssim"] < 1
    events = EventAccumulator(trainer.log_dir)
    events.Reload()
    assert {"test/psnr", "test/ssim", "test/agree_digits-mlp"} <= set(events.Tags()["scalars"])
    width, height = Image.open(Path(grid.saved[0])).size
    # two classes, each a block of 6 pairs (a 64 px original above its reconstruction),
    # one block to a row (near-square)
    pair_w, pair_h = 64 + 4, 2 * 66 + 2
    block_w, block_h = 6 * (pair_w + 2) + 2, pair_h + 4
    assert (width, height) == (2 + block_w + 2, 2 + 2 * (block_h + 2))
