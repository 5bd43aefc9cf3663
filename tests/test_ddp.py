"""Two-process CPU DDP (gloo, ``ddp_spawn``): sharding of targets and a classifier run."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from inversion import build_classifier
from model_inversion import train
from model_inversion.datamodules import ClassTargetsDataModule

REPO = Path(__file__).resolve().parents[1]


class TargetRecorder(pl.LightningModule):
    """Writes the target indices each rank sees, per stage, to ``out_dir``."""

    def __init__(self, out_dir: str) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        self.weight = nn.Parameter(torch.zeros(()))
        self.seen: list[int] = []

    def _record(self, batch) -> None:
        self.seen += batch["index"].tolist()

    def validation_step(self, batch, batch_idx):
        self._record(batch)

    def predict_step(self, batch, batch_idx):
        self._record(batch)
        return batch["index"]

    def _dump(self, stage: str) -> None:
        path = self.out_dir / f"{stage}-rank{self.global_rank}-of{self.trainer.world_size}.txt"
        path.write_text(" ".join(map(str, self.seen)))
        self.seen = []

    def on_validation_epoch_end(self) -> None:
        self._dump("validate")

    def on_predict_epoch_end(self) -> None:
        self._dump("predict")


def _read_shards(out_dir: Path, stage: str) -> list[list[int]]:
    files = sorted(out_dir.glob(f"{stage}-rank*-of2.txt"))
    return [[int(v) for v in f.read_text().split()] for f in files]


@pytest.mark.parametrize("stage", ["validate", "predict"])
def test_class_targets_are_produced_exactly_once_over_two_ranks(tmp_path, stage):
    # 3 classes x 3 images = 9 targets: the shards are uneven (5 + 4), and a padding
    # sampler would duplicate one target.
    dm = ClassTargetsDataModule(num_classes=10, classes=[0, 4, 9], images_per_class=3, batch_size=2)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    getattr(trainer, stage)(TargetRecorder(str(tmp_path)), datamodule=dm)
    shards = _read_shards(tmp_path, stage)
    assert len(shards) == 2 and all(shards)
    together = shards[0] + shards[1]
    assert sorted(together) == list(range(9)), shards
    assert len(together) == len(set(together))


@pytest.mark.parametrize("config", ["classifier.yaml", "robust_prior_training.yaml"])
def test_classifier_trains_with_two_process_ddp(tmp_path, monkeypatch, config):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py"])
    cli = train.main(
        [
            "fit",
            "--config",
            str(REPO / "configs/digits" / config),
            "--trainer.accelerator=cpu",
            "--trainer.devices=2",
            "--trainer.strategy=ddp_spawn",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=3",
            "--trainer.limit_val_batches=2",
            "--trainer.enable_progress_bar=false",
            *(
                ["--model.init_args.eval_steps=3", "--model.init_args.full_robust_eval=true"]
                if config == "robust_prior_training.yaml"
                else []
            ),
        ]
    )
    assert cli.trainer.world_size == 2
    checkpoints = list(tmp_path.glob("runs/*/version_*/checkpoints/*.ckpt"))
    assert len(checkpoints) == 1
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=True)
    assert state["global_step"] == 3
    model = build_classifier(str(checkpoints[0]))
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)
    if config == "robust_prior_training.yaml":  # PGD ran inside both processes' validation
        metrics = cli.trainer.callback_metrics
        assert 0 <= float(metrics["val/robust_acc"]) <= float(metrics["val/acc"])
