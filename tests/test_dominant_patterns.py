"""Dominant patterns: objectives, projection, metrics, the module, DDP, configs, downstream."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from trainers import quiet_trainer

from inversion import InversionError, build_classifier
from inversion.data.digits import load_digits_split
from inversion.dominant_patterns import (
    OBJECTIVES,
    Dominance,
    FoolingRate,
    PatternObjective,
    PatternScores,
    UniversalPattern,
    find_pattern,
    pattern_optimizer,
    random_pattern,
    score_pattern,
    transfer_matrix,
)
from inversion.dominant_patterns.downstream import fit_head, relabel, replace_head, save_classifier
from inversion.training import accuracy
from model_inversion import train
from model_inversion.callbacks import ImageGrid, ImageMetrics
from model_inversion.datamodules import (
    ClassTargetsDataModule,
    DigitsDataModule,
    NoiseDataModule,
    ProxyDataModule,
)
from model_inversion.lightning_modules import DominantPatterns

REPO = Path(__file__).resolve().parents[1]
EPS = 32 / 255
VAL = 60  # validation images of the module tests


@pytest.fixture(scope="module")
def cnn():
    return build_classifier("digits:cnn").freeze()


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digits_split("train")
    return images[:64], labels[:64]


# --- the pattern ----------------------------------------------------------------------------
def test_pattern_is_projected_clipped_and_shown():
    pattern = UniversalPattern(1, 8, eps=0.1, clip=True, canvas=0.5).requires_grad_(False)
    pattern.pattern.copy_(torch.linspace(-1, 1, 64).view(1, 1, 8, 8))
    assert float(pattern.delta().abs().max()) == pytest.approx(0.1)
    images = torch.zeros(2, 1, 8, 8)
    assert float(pattern(images).min()) == 0 and float(pattern(images).max()) == pytest.approx(0.1)
    pattern.clip = False
    assert float(pattern(images).min()) == pytest.approx(-0.1)
    torch.testing.assert_close(pattern.alone(), 0.5 + pattern.delta())
    picture = pattern.picture()
    assert float(picture.min()) == 0 and float(picture.max()) == 1
    pattern.project_()
    assert float(pattern.pattern.abs().max()) == pytest.approx(0.1)


def test_pattern_bad_input_is_one_clear_error():
    with pytest.raises(InversionError, match="eps is an L-inf radius"):
        UniversalPattern(1, 32, eps=10)
    with pytest.raises(InversionError, match="set the module's channels and image_size"):
        UniversalPattern(1, 32)(torch.rand(2, 3, 32, 32))
    with pytest.raises(InversionError, match="choose one of"):
        PatternObjective("dominent")


def test_wrong_layer_name_lists_close_names(cnn):
    with pytest.raises(InversionError, match="Close names: stage2"):
        PatternObjective("dominant", layer="stage_2").check(cnn)
    with pytest.raises(InversionError, match="No layer named"):
        PatternObjective("gd_uap", layers=("nope",)).check(cnn)
    PatternObjective("dominant", layer="penultimate").check(cnn)


def test_random_pattern_is_full_strength_signs():
    pattern = random_pattern(3, 16, eps=0.05, generator=torch.Generator().manual_seed(0))
    assert pattern.delta().unique().tolist() == pytest.approx([-0.05, 0.05])


# --- the objectives -------------------------------------------------------------------------
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_improves_within_the_ball(objective, cnn, digits):
    images = digits[0][:8]
    spec = PatternObjective(objective)
    pattern = UniversalPattern(1, 32, eps=EPS)
    optimizer = pattern_optimizer(pattern, lr=1e-2)
    losses = []
    for _ in range(5):
        pattern.project_()
        loss = spec(cnn, pattern, images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    pattern.project_()
    assert losses[-1] < losses[0]
    assert 0 < pattern.pattern.abs().max() <= EPS + 1e-7


def test_dominant_objective_is_one_minus_cosine(cnn, digits):
    images = digits[0][:4]
    pattern = random_pattern(1, 32, eps=EPS, generator=torch.Generator().manual_seed(1))
    logits = cnn(torch.cat([pattern.alone(), pattern(images)]))
    expected = 1 - torch.nn.functional.cosine_similarity(logits[:1], logits[1:]).mean()
    loss = PatternObjective("dominant")(cnn, pattern, images)
    torch.testing.assert_close(loss, expected)


def _loader(images, labels, batch_size=16):
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size)


def test_labels_are_never_used_and_gd_uap_uses_no_data(cnn, digits):
    images, labels = digits
    images, labels = images[:16], labels[:16]
    objective = PatternObjective("dominant")
    found = find_pattern(cnn, _loader(images, labels, 8), objective, eps=EPS, epochs=1)
    shuffled = find_pattern(cnn, _loader(images, labels.flip(0), 8), objective, eps=EPS, epochs=1)
    unlabelled = find_pattern(cnn, [images[:8], images[8:]], objective, eps=EPS, epochs=1)
    torch.testing.assert_close(found.pattern, shuffled.pattern, rtol=0, atol=0)
    torch.testing.assert_close(found.pattern, unlabelled.pattern, rtol=0, atol=0)
    gd = PatternObjective("gd_uap")
    on_digits = find_pattern(cnn, [images[:8]], gd, eps=EPS, epochs=2)
    on_noise = find_pattern(cnn, [torch.rand(8, 1, 32, 32)], gd, eps=EPS, epochs=2)
    torch.testing.assert_close(on_digits.pattern, on_noise.pattern, rtol=0, atol=0)


# --- the metrics ----------------------------------------------------------------------------
def test_fooling_rate_and_dominance_count_what_they_say():
    clean = torch.tensor([0, 1, 2, 3])
    perturbed = torch.tensor([0, 5, 5, 3])
    fooling, dominance = FoolingRate(), Dominance()
    fooling.update(clean, perturbed)
    dominance.update(perturbed, torch.tensor([5]))  # the pattern alone predicts 5
    assert float(fooling.compute()) == 0.5 and float(dominance.compute()) == 0.5
    logits = torch.nn.functional.one_hot(perturbed, 10).float()  # logits work too
    fooling.update(clean, logits)
    assert float(fooling.compute()) == 0.5


def test_pattern_scores_report_accuracy_only_with_labels():
    clean = torch.eye(4)[[0, 1, 2, 3]]
    perturbed = torch.eye(4)[[0, 1, 1, 1]]
    alone = torch.eye(4)[[1]]
    scores = PatternScores(4)
    scores.update(clean, perturbed, alone)
    assert set(scores.compute()) == {"fooling_rate", "dominance"}
    scores.update(clean, perturbed, alone, torch.full((4,), -1))
    assert set(scores.compute()) == {"fooling_rate", "dominance"}
    scores.reset()
    scores.update(clean, perturbed, alone, torch.tensor([0, 1, 2, 0]))
    assert scores.compute() == pytest.approx(
        {"fooling_rate": 0.5, "dominance": 0.75, "clean_acc": 0.75, "perturbed_acc": 0.5}
    )


def test_score_pattern_and_transfer_matrix(cnn):
    images, labels = (t[:60] for t in load_digits_split("test"))
    zero = UniversalPattern(1, 32, eps=EPS)
    scores = score_pattern(cnn, zero, images, labels, batch_size=25)
    assert scores["fooling_rate"] == 0
    assert (
        scores["clean_acc"]
        == scores["perturbed_acc"]
        == pytest.approx(accuracy(cnn, images, labels))
    )
    noise = random_pattern(1, 32, eps=64 / 255, generator=torch.Generator().manual_seed(0))
    mlp = build_classifier("digits:mlp").freeze()
    matrix = transfer_matrix({"zero": zero, "noise": noise}, {"cnn": cnn, "mlp": mlp}, images)
    assert matrix["zero"] == {"cnn": 0.0, "mlp": 0.0}
    white_box = score_pattern(cnn, noise, images)["fooling_rate"]
    assert matrix["noise"]["cnn"] == pytest.approx(white_box)
    assert 0 < matrix["noise"]["mlp"] < 1


# --- the module -----------------------------------------------------------------------------


class FixedOrder(pl.LightningDataModule):
    """Digits train images in a fixed order (no shuffling, no augmentation, even under DDP)."""

    def __init__(self, count: int = 64, batch_size: int = 16) -> None:
        super().__init__()
        images, labels = load_digits_split("train")
        self.train = TensorDataset(images[:count], labels[:count])
        images, labels = load_digits_split("val")
        self.val = TensorDataset(images[:VAL], labels[:VAL])
        self.batch_size = batch_size

    def train_dataloader(self):
        sampler = None
        if self.trainer is not None and self.trainer.world_size > 1:  # Lightning's shuffles
            world, rank = self.trainer.world_size, self.trainer.global_rank
            sampler = DistributedSampler(self.train, world, rank, shuffle=False)
        return DataLoader(self.train, batch_size=self.batch_size, sampler=sampler)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=VAL // 2)


def test_module_is_a_thin_shell_over_the_engine(tmp_path, cnn):
    module = DominantPatterns(eps=EPS, transfer_to=["digits:mlp"])
    logger = pl.loggers.TensorBoardLogger(str(tmp_path), name="run")
    callbacks = [ImageGrid(per_class=2), ImageMetrics(verifiers=["digits:resnet"], feature=None)]
    trainer = quiet_trainer(max_epochs=2, logger=logger, callbacks=callbacks, log_every_n_steps=2)
    trainer.fit(module, datamodule=FixedOrder(count=32))
    assert trainer.global_step == 4
    loader = FixedOrder(count=32).train_dataloader()
    engine = find_pattern(cnn, loader, PatternObjective(), EPS, epochs=2)
    torch.testing.assert_close(module.pattern.pattern, engine.pattern, rtol=1e-5, atol=1e-6)
    assert 0 < module.pattern.pattern.abs().max() <= EPS + 1e-7
    assert list(module.state_dict()) == ["pattern.pattern"]  # the classifiers are not saved

    val_images, val_labels = (t[:VAL] for t in load_digits_split("val"))
    expected = score_pattern(cnn, module.pattern, val_images, val_labels)
    logged = trainer.callback_metrics
    for key, value in expected.items():
        assert float(logged[f"val/{key}"]) == pytest.approx(value, abs=1e-6)
    mlp = build_classifier("digits:mlp").freeze()
    mlp_fooling = score_pattern(mlp, module.pattern, val_images)["fooling_rate"]
    assert float(logged["val/fooling_rate_digits-mlp"]) == pytest.approx(mlp_fooling, abs=1e-6)
    resnet = build_classifier("digits:resnet").freeze()
    perturbed_acc = accuracy(resnet, module.pattern(val_images), val_labels)
    assert float(logged["val/top1_digits-resnet"]) == pytest.approx(perturbed_acc, abs=1e-6)

    events = EventAccumulator(trainer.log_dir, size_guidance={"images": 0})
    events.Reload()
    assert {"val/pattern", "val/images"} <= set(events.Tags()["images"])
    assert {"val/fooling_rate", "val/dominance", "train/loss"} <= set(events.Tags()["scalars"])
    pngs = sorted(p.name for p in (Path(trainer.log_dir) / "images").glob("*.png"))
    assert "pattern-val-step4.png" in pngs and any(p.startswith("val-epoch") for p in pngs)

    outputs = module.test_step(next(iter(FixedOrder().val_dataloader())), 0)
    assert outputs["images"].shape == (30, 1, 32, 32) and outputs["labels"].shape == (30,)
    torch.testing.assert_close(outputs["images"], module.pattern(val_images[:30]))


def test_module_checkpoint_resumes_the_same_run(tmp_path):
    every_4 = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=4, save_top_k=-1)
    whole = DominantPatterns(eps=EPS)
    trainer = quiet_trainer(
        max_epochs=2, enable_checkpointing=True, callbacks=[every_4], limit_val_batches=0
    )
    trainer.fit(whole, datamodule=FixedOrder())
    middle = tmp_path / "epoch=0-step=4.ckpt"
    saved = torch.load(middle, weights_only=True)
    assert list(saved["state_dict"]) == ["pattern.pattern"]
    assert saved["state_dict"]["pattern.pattern"].abs().max() <= EPS + 1e-7
    resumed = DominantPatterns(eps=EPS)
    quiet_trainer(max_epochs=2, limit_val_batches=0).fit(
        resumed, datamodule=FixedOrder(), ckpt_path=str(middle)
    )
    torch.testing.assert_close(resumed.pattern.pattern, whole.pattern.pattern, rtol=0, atol=0)
    loaded = DominantPatterns.load_from_checkpoint(str(middle), weights_only=True)
    assert loaded.hparams.eps == EPS
    elsewhere = DominantPatterns(classifier="digits:mlp", pattern_from=str(middle))
    torch.testing.assert_close(elsewhere.pattern.pattern, saved["state_dict"]["pattern.pattern"])
    with pytest.raises(InversionError, match="set channels and image_size to match"):
        DominantPatterns(image_size=28, pattern_from=str(middle))


def test_module_trains_on_noise_and_evaluates_on_digits():
    data = ProxyDataModule(
        NoiseDataModule(num_samples=32, batch_size=16), DigitsDataModule(batch_size=90)
    )
    module = DominantPatterns(objective="cosine_uap", layer="penultimate", eps=EPS)
    trainer = quiet_trainer(max_epochs=1, limit_val_batches=1, limit_test_batches=1)
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == 2 and module.pattern.pattern.abs().max() > 0
    assert "val/clean_acc" in trainer.callback_metrics
    trainer.test(module, datamodule=data)
    assert float(trainer.callback_metrics["test/clean_acc"]) > 0.9


def test_module_runs_under_bf16_autocast():
    module = DominantPatterns(eps=EPS)
    trainer = quiet_trainer(fast_dev_run=True, precision="bf16-mixed")
    trainer.fit(module, datamodule=FixedOrder(count=8, batch_size=8))
    assert 0 < float(module.pattern.pattern.abs().max()) <= EPS + 1e-7
    assert 0 <= float(trainer.callback_metrics["val/fooling_rate"]) <= 1


def test_module_bad_input_is_one_clear_error():
    with pytest.raises(InversionError, match="Close names"):
        DominantPatterns(layer="stage_3")
    module = DominantPatterns(image_size=28)
    with pytest.raises(InversionError, match="set the module's channels and image_size"):
        quiet_trainer(fast_dev_run=True).fit(module, datamodule=DigitsDataModule(batch_size=4))
    with pytest.raises(InversionError, match="batches of images"):
        quiet_trainer(fast_dev_run=True).fit(
            DominantPatterns(), datamodule=ClassTargetsDataModule()
        )


def test_two_process_ddp_all_reduces_one_pattern():
    # two ranks x 8 images = one process x 16 images: the same pattern, step by step
    module = DominantPatterns(eps=EPS)
    trainer = quiet_trainer(devices=2, strategy="ddp_spawn", max_epochs=1)
    trainer.fit(module, datamodule=FixedOrder(count=64, batch_size=8))
    single = DominantPatterns(eps=EPS)
    quiet_trainer(max_epochs=1, limit_val_batches=0).fit(
        single, datamodule=FixedOrder(count=64, batch_size=16)
    )
    # equal up to float summation order (unsynchronised ranks would differ by ~1e-2)
    torch.testing.assert_close(module.pattern.pattern, single.pattern.pattern, rtol=0, atol=1e-4)
    val_images, val_labels = (t[:VAL] for t in load_digits_split("val"))
    cnn = build_classifier("digits:cnn").freeze()
    expected = score_pattern(cnn, module.pattern, val_images, val_labels)
    for key, value in expected.items():  # metric states summed over the two ranks
        assert float(trainer.callback_metrics[f"val/{key}"]) == pytest.approx(value, abs=1e-6)


# --- configs ---------------------------------------------------------------------------------
def test_cli_restores_the_nested_datamodules_hyperparameters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py"])
    config = REPO / "configs" / "digits" / "dominant_patterns_noise.yaml"
    cli = train.main(["--config", str(config), "--trainer.fast_dev_run=true"], run=False)
    assert cli.datamodule.proxy.hparams.kind == "gaussian"
    assert cli.datamodule.evaluation.hparams.batch_size == 120
    assert "proxy" not in cli.datamodule.evaluation.hparams


# --- downstream -----------------------------------------------------------------------------
def test_downstream_head_learns_the_new_task_and_is_a_classifier_spec(tmp_path, cnn):
    assert relabel(torch.arange(10), "parity").tolist() == [0, 1] * 5
    with pytest.raises(InversionError, match="choose one of"):
        relabel(torch.arange(10), "odd")
    model = build_classifier("digits:cnn")
    head = replace_head(model, 2)
    images, digits = load_digits_split("train")
    fit_head(model, head, images[:256], relabel(digits[:256], "at_least_5"), epochs=10)
    assert model.num_classes == 2 and not any(p.requires_grad for p in model.parameters())
    val_images, val_digits = load_digits_split("val")
    assert accuracy(model, val_images, relabel(val_digits, "at_least_5")) > 0.85
    noise = torch.rand(4, 1, 32, 32)
    torch.testing.assert_close(model.penultimate(noise), cnn.penultimate(noise))  # frozen
    rebuilt = build_classifier(str(save_classifier(model, tmp_path / "head.ckpt", "digits:cnn")))
    torch.testing.assert_close(rebuilt(noise), model(noise))
