"""IS and KID on one and on two CPU processes (gloo, ``ddp_spawn``): the same numbers."""

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from inversion.data.digits import load_digits_split
from model_inversion.callbacks import ImageMetrics

pytestmark = pytest.mark.slow  # two spawned processes score the same images (over a minute)


class ClassOrderedDigits(pl.LightningModule):
    """Returns 9 test digits of each class, class by class, from its test steps."""

    def __init__(self) -> None:
        super().__init__()
        images, labels = load_digits_split("test")
        keep = torch.cat([torch.nonzero(labels == c).flatten()[:9] for c in range(10)])
        self.images, self.labels = images[keep], labels[keep]
        self.weight = nn.Parameter(torch.zeros(()))

    def test_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.arange(len(self.labels))), batch_size=16)

    def test_step(self, batch, batch_idx):
        index = batch[0].cpu()
        return {"images": self.images[index], "labels": self.labels[index]}


def _scores(devices: int, strategy: str) -> dict[str, float]:
    metrics = ImageMetrics(feature="digits:cnn", reference="digits:val", log_hparams=False)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        logger=False,
        callbacks=[metrics],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.test(ClassOrderedDigits())
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_inception_score_and_kid_are_the_same_on_one_and_two_processes():
    # the two ranks see the images round-robin (even and odd positions): gathered rank by
    # rank, the splits and subsets would hold other images than on one process
    single = _scores(1, "auto")
    double = _scores(2, "ddp_spawn")
    keys = ("is_digits-cnn", "is_digits-cnn_std", "kid_digits-cnn", "kid_digits-cnn_std")
    assert {f"test/{k}" for k in keys} <= set(single) and set(single) == set(double)
    assert single["test/images"] == double["test/images"] == 90
    assert single["test/is_digits-cnn"] > 3.0  # class-ordered, yet the splits are mixed (not ~1)
    for key, value in single.items():
        assert double[key] == pytest.approx(value, rel=1e-5, abs=1e-7), (key, single, double)
