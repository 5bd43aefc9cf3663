"""Conditioned-generator network inversion: encodings, generator, losses, metric, data, module."""

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from trainers import quiet_trainer

from inversion import InversionError, build_classifier
from inversion.conditioned_generator import (
    ClassDiversity,
    GeneratorLoss,
    GeneratorRecipe,
    adversarial_samples,
    feature_orthogonality,
    generator_from_checkpoint,
    kl_to_condition,
    mean_pairwise_cosine,
    sample_classes,
    train_batch,
    train_generator,
    write_class_folders,
)
from inversion.conditioned_generator.generator import (
    ConditionedGenerator,
    balanced_labels,
    hot_matrix,
    soft_vector,
    upsampling_plan,
)
from model_inversion import evaluate, generate, train
from model_inversion.datamodules import LatentsDataModule
from model_inversion.datamodules.conditioned_generator import TrainBatches
from model_inversion.lightning_modules import ConditionedGeneratorInversion

REPO = Path(__file__).resolve().parents[1]
TINY = {"latent_dim": 8, "width": 8, "max_width": 32}


# --- encodings and generator ------------------------------------------------------------
def test_soft_vector_is_a_random_distribution_whose_argmax_is_the_label():
    labels = torch.arange(10).repeat(20)
    noise = torch.randn(200, 10, generator=torch.Generator().manual_seed(0))
    vector = soft_vector(labels, noise, scale=2.0)
    assert (vector.argmax(1) == labels).all()
    torch.testing.assert_close(vector.sum(1), torch.ones(200))
    assert vector.std(0).min() > 0.01  # hidden: differs between samples of a class
    other_noise = torch.randn(200, 10, generator=torch.Generator().manual_seed(1))
    again = soft_vector(labels, other_noise, scale=2.0)
    assert not torch.allclose(vector, again)


def test_hot_matrix_rows_and_columns():
    matrix = hot_matrix(torch.tensor([3]), 10)[0, 0]
    expected = torch.zeros(10, 10)
    expected[3, :] = expected[:, 3] = 1
    assert torch.equal(matrix, expected)
    # many classes: two base-m digits, still one matrix per class
    many = hot_matrix(torch.arange(1000), 1000)
    assert many.shape == (1000, 1, 32, 32)
    assert len(torch.unique(many.flatten(1), dim=0)) == 1000
    with pytest.raises(InversionError, match="matrix_size >= 32"):
        hot_matrix(torch.tensor([1]), 1000, size=20)


def test_balanced_labels():
    labels = balanced_labels(25, 10, torch.Generator().manual_seed(0))
    counts = torch.bincount(labels, minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 25


@pytest.mark.parametrize("conditioning", ["onehot", "vector", "matrix", "vector_matrix"])
def test_generator_shapes_and_range(conditioning):
    generator = ConditionedGenerator(10, 32, 1, conditioning=conditioning, **TINY)
    labels = torch.tensor([0, 3, 9])
    images = generator.sample(labels, torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 32, 32) and images.min() >= 0 and images.max() <= 1
    condition = generator.encode(labels, torch.randn(3, 10))
    assert (condition.target.argmax(1) == labels).all()
    assert (condition.matrix is not None) == ("matrix" in conditioning)


def test_generator_sizes_for_224_px_and_other_sizes():
    assert upsampling_plan(32) == (4, 3) and upsampling_plan(224) == (7, 5)
    assert upsampling_plan(28) == (7, 2)
    with pytest.raises(InversionError, match="choose e.g."):
        upsampling_plan(100 * 3)
    generator = ConditionedGenerator(1000, 224, 3, latent_dim=16, width=4, max_width=16)
    assert generator.matrix_size == 32  # 1000 classes: row c // 32, column c % 32
    images = generator.sample(torch.tensor([5, 999]))
    assert images.shape == (2, 3, 224, 224)


def test_dropout_stays_on_at_sampling_when_asked():
    labels = torch.tensor([1, 1])
    for keep, differ in ((True, True), (False, False)):
        generator = ConditionedGenerator(10, dropout=0.5, dropout_at_sampling=keep, **TINY)
        generator.train()
        generator(torch.randn(8, 8), generator.encode(torch.arange(8) % 10, torch.randn(8, 10)))
        generator.eval()
        latent, noise = torch.randn(1, 8).repeat(2, 1), torch.randn(1, 10).repeat(2, 1)
        images = generator(latent, generator.encode(labels, noise))
        assert bool((images[0] - images[1]).abs().max() > 1e-3) == differ
        assert not generator.project[2].training  # batch norm in eval mode either way


def test_bad_generator_options_are_clear_errors():
    with pytest.raises(InversionError, match="Unknown conditioning"):
        ConditionedGenerator(10, conditioning="hot")
    with pytest.raises(InversionError, match="dropout"):
        ConditionedGenerator(10, dropout=1.0)
    generator = ConditionedGenerator(10, conditioning="vector", **TINY)
    with pytest.raises(InversionError, match="needs noise"):
        generator.encode(torch.tensor([1]))
    with pytest.raises(InversionError, match="classes in 0..9"):
        generator.sample(torch.tensor([10]))


# --- losses -----------------------------------------------------------------------------
def test_loss_terms_against_direct_computations():
    logits, target = torch.randn(6, 10), torch.softmax(torch.randn(6, 10), 1)
    expected = F.kl_div(F.log_softmax(logits, 1), target, reduction="batchmean")
    torch.testing.assert_close(kl_to_condition(logits, target), expected)
    onehot = F.one_hot(torch.arange(6), 10).float()  # KL to a one-hot is cross-entropy
    torch.testing.assert_close(
        kl_to_condition(logits, onehot), F.cross_entropy(logits, torch.arange(6))
    )
    features = torch.randn(6, 5)
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    cos = F.cosine_similarity(features[:, None], features[None], dim=2)
    pairs = [(i, j) for i in range(6) for j in range(6) if i != j]
    same = [(i, j) for i, j in pairs if labels[i] == labels[j]]
    mean_all = torch.stack([cos[i, j] for i, j in pairs]).mean()
    mean_same = torch.stack([cos[i, j] for i, j in same]).mean()
    torch.testing.assert_close(mean_pairwise_cosine(features), mean_all)
    torch.testing.assert_close(mean_pairwise_cosine(features, labels), mean_same)
    squared = torch.stack([cos[i, j] ** 2 for i, j in pairs]).mean()
    torch.testing.assert_close(feature_orthogonality(features), squared)
    orthonormal = torch.eye(4)
    assert float(feature_orthogonality(orthonormal)) == 0.0


def test_generator_loss_parts_and_options():
    classifier = build_classifier("digits:cnn").freeze()
    images = torch.rand(4, 1, 32, 32, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3])
    target = F.one_hot(labels, 10).float()
    objective = GeneratorLoss(orthogonality=0.5, tv_l2=1e-3, l2=1e-4)
    loss, parts = objective(classifier, images, labels, target)
    assert {"kl", "ce", "cosine", "orthogonality", "tv_l2", "l2", "target_acc"} <= set(parts)
    loss.backward()
    assert images.grad.abs().sum() > 0
    plain = GeneratorLoss(kl=0.0, cosine=0.0)
    assert not plain.needs_features and set(plain(classifier, images, labels, target)[1]) == {
        "ce",
        "target_acc",
    }
    with pytest.raises(InversionError, match="Every loss weight is 0"):
        GeneratorLoss(kl=0, ce=0, cosine=0)
    with pytest.raises(InversionError, match="Unknown loss options"):
        GeneratorLoss().with_options({"gamma": 1})
    with pytest.raises(InversionError, match="cosine_pairs"):
        GeneratorLoss(cosine_pairs="pairs")


# --- diversity metric -------------------------------------------------------------------
def test_class_diversity_matches_brute_force_over_batches():
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(30, 7, generator=gen)
    images = torch.rand(30, 1, 8, 8, generator=gen)
    labels = torch.tensor([0] * 12 + [1] * 17 + [2])  # class 2 has one image: ignored
    metric = ClassDiversity(3, 7, 1, 8)
    for part in torch.arange(30).split(7):  # several updates = one pass
        metric.update(features[part], images[part], labels[part])
    got = metric.compute()
    cosines, distances = [], []
    for c in (0, 1):
        f, x = features[labels == c], images[labels == c].flatten(1)
        n = len(f)
        cos = F.cosine_similarity(f[:, None], f[None], dim=2)
        cosines.append((cos.sum() - n) / (n * (n - 1)))
        squared = torch.cdist(x, x).pow(2)
        distances.append((squared.sum() / (n * (n - 1)) / x.shape[1]).sqrt())
    torch.testing.assert_close(got["feature_cosine"], torch.stack(cosines).mean())
    torch.testing.assert_close(got["pixel_distance"], torch.stack(distances).mean())
    assert torch.isnan(metric.per_class()["feature_cosine"][2])


# --- data -------------------------------------------------------------------------------
def test_latents_are_reproducible_balanced_and_distinct_per_epoch_and_rank():
    data = LatentsDataModule(batch_size=20, batches_per_epoch=3)
    data.configure(10, 8)
    loader = data.train_dataloader()
    first = list(loader)
    assert len(first) == 3
    assert all(torch.bincount(b["label"], minlength=10).tolist() == [2] * 10 for b in first)
    again = list(data.train_dataloader())
    assert all(torch.equal(a["latent"], b["latent"]) for a, b in zip(first, again, strict=True))
    loader.sampler.set_epoch(1)
    second = list(loader)
    assert not torch.equal(first[0]["latent"], second[0]["latent"])
    ranks = []
    for rank in range(2):
        batches = TrainBatches(3, 20, 8, 10, seed=0)
        batches.world, batches.rank = 2, rank
        ranks.append(torch.cat([batches[k]["latent"] for k in range(3)]))
    assert not torch.isclose(ranks[0][:, None], ranks[1][None]).all(-1).any()  # no shared draw


def test_validation_draws_are_fixed_and_cover_every_class():
    data = LatentsDataModule(batch_size=16, val_per_class=3, test_per_class=2)
    data.configure(10, 8)
    val = list(data.val_dataloader())
    again = list(data.val_dataloader())
    labels = torch.cat([b["label"] for b in val])
    assert torch.bincount(labels).tolist() == [3] * 10
    assert sorted(torch.cat([b["index"] for b in val]).tolist()) == list(range(30))
    assert all(torch.equal(a["latent"], b["latent"]) for a, b in zip(val, again, strict=True))
    test = torch.cat([b["latent"] for b in data.test_dataloader()])
    assert (
        len(test) == 20 and not torch.isclose(test[:, None], val[0]["latent"][None]).all(-1).any()
    )


def test_data_sizes_must_match_the_model():
    data = LatentsDataModule(latent_dim=16)
    with pytest.raises(InversionError, match="does not match the model's latent_dim=8"):
        data.configure(10, 8)
    with pytest.raises(InversionError, match="needs num_classes and latent_dim"):
        LatentsDataModule().train_dataloader()


# --- module -----------------------------------------------------------------------------
def _module(**kwargs) -> ConditionedGeneratorInversion:
    options = {"classifier": "digits:cnn", **TINY, "lr": 0.01, **kwargs}
    return ConditionedGeneratorInversion(**options)


def _data(**kwargs) -> LatentsDataModule:
    options = {"batch_size": 10, "batches_per_epoch": 4, "val_per_class": 2, **kwargs}
    return LatentsDataModule(**options)


def test_module_trains_the_generator_only_and_returns_samples():
    module = _module()
    before = {k: v.clone() for k, v in module.generator.state_dict().items()}
    classifier_before = {k: v.clone() for k, v in module.classifier.state_dict().items()}
    trainer = quiet_trainer(max_epochs=1, limit_val_batches=1)
    trainer.fit(module, datamodule=_data(batches_per_epoch=3))
    assert trainer.global_step == 3
    changed = [k for k, v in module.generator.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.endswith("weight") for k in changed)
    for k, v in module.classifier.state_dict().items():
        assert torch.equal(v, classifier_before[k])
    assert not any(k.startswith("classifier") for k in module.state_dict())
    assert {"val/target_top1", "val/feature_cosine", "val/pixel_distance"} <= set(
        trainer.callback_metrics
    )
    data = _data()
    data.configure(10, 8)
    batch = next(iter(data.val_dataloader()))
    module.eval()
    out = module.validation_step(batch, 0)
    assert set(out) == {"images", "labels"} and out["images"].shape == (10, 1, 32, 32)
    torch.testing.assert_close(module.validation_step(batch, 0)["images"], out["images"])


def test_bad_pairings_and_layers_are_clear_errors():
    with pytest.raises(InversionError, match="has no layer 'stage9'"):
        _module(feature_layer="stage9")
    with pytest.raises(Exception, match="needs a LatentsDataModule"):
        from model_inversion.datamodules import ClassTargetsDataModule

        quiet_trainer(max_steps=1).fit(_module(), datamodule=ClassTargetsDataModule())


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    every_2 = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=2, save_top_k=-1)
    whole = _module()
    trainer = quiet_trainer(
        max_steps=5, limit_val_batches=0, enable_checkpointing=True, callbacks=[every_2]
    )
    trainer.fit(whole, datamodule=_data(batches_per_epoch=3))
    middle = tmp_path / "epoch=0-step=2.ckpt"  # inside the first epoch of 3 batches
    saved = torch.load(middle, weights_only=True)
    assert not any(k.startswith("classifier") for k in saved["state_dict"])
    resumed = _module()
    quiet_trainer(max_steps=5, limit_val_batches=0).fit(  # rest of epoch 0, then into epoch 1
        resumed, datamodule=_data(batches_per_epoch=3), ckpt_path=str(middle)
    )
    for key, value in whole.generator.state_dict().items():
        torch.testing.assert_close(resumed.generator.state_dict()[key], value, rtol=0, atol=0)


def test_module_is_train_generator():
    """A few Trainer steps of the module = train_generator with the same seed and draws."""
    seed, options = 3, {"conditioning": "vector_matrix", "warmup_steps": 2}
    module = _module(seed=seed, **options)
    classifier = build_classifier("digits:cnn").freeze()
    recipe = GeneratorRecipe.from_dict({**TINY, "lr": 0.01, **options})
    state = torch.get_rng_state()
    expected = train_generator(classifier, steps=4, batch_size=10, seed=seed, recipe=recipe)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
    data = _data(batches_per_epoch=4, seed=seed)
    data.configure(10, 8)
    first = next(iter(data.train_dataloader()))
    for key, value in train_batch(seed, 0, 10, 8, 10).items():
        assert torch.equal(first[key], value)
    torch.manual_seed(seed)  # the training dropout masks: train_generator's stream
    quiet_trainer(max_epochs=1, limit_val_batches=0).fit(module, datamodule=data)
    got = module.generator.state_dict()
    assert got.keys() == expected.state_dict().keys()
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_runs(tmp_path):
    module = _module(channels_last=True)
    trainer = quiet_trainer(max_steps=1, limit_val_batches=1, precision="bf16-mixed")
    trainer.fit(module, datamodule=_data())
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_two_process_ddp_trains_validates_and_checkpoints(tmp_path):
    module = _module()
    every = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = quiet_trainer(
        devices=2,
        strategy="ddp_spawn",
        max_epochs=1,
        enable_checkpointing=True,
        callbacks=[every],
    )
    trainer.fit(module, datamodule=_data(batches_per_epoch=2))  # 2 x 10 validation samples
    generator = generator_from_checkpoint(tmp_path / "last.ckpt")
    assert generator(
        torch.randn(2, 8), generator.encode(torch.tensor([0, 1]), torch.randn(2, 10))
    ).shape == (2, 1, 32, 32)
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert state["global_step"] == 2
    # the diversity and accuracy states were synced over both processes' samples
    assert 0.0 <= float(trainer.callback_metrics["val/target_top1"]) <= 1.0
    assert torch.isfinite(trainer.callback_metrics["val/feature_cosine"])


# --- applications -----------------------------------------------------------------------
def test_adversarial_samples_follow_the_rule():
    class Fixed(torch.nn.Module):
        def __init__(self, answers):
            super().__init__()
            self.answers = torch.tensor(answers)
            self.weight = torch.nn.Parameter(torch.zeros(()))

        def forward(self, images):
            return F.one_hot(self.answers[: len(images)], 3).float()

    labels = torch.tensor([0, 1, 2, 0])
    target = Fixed([0, 1, 2, 1])  # accepts the first three
    verifiers = [Fixed([1, 1, 0, 0]), Fixed([2, 0, 2, 0]), Fixed([1, 1, 1, 0])]
    images = torch.rand(4, 1, 4, 4)
    # sample 0: all three verifiers say "not 0"; sample 1: one of three; sample 2: two of
    # three; sample 3: the target itself says "not 0"
    majority = adversarial_samples(target, verifiers, images, labels, "majority")
    assert majority["adversarial"].tolist() == [True, False, True, False]
    assert float(majority["adversarial_rate"]) == 0.5
    assert float(majority["adversarial_of_accepted"]) == pytest.approx(2 / 3)
    unanimous = adversarial_samples(target, verifiers, images, labels, "all")
    assert unanimous["adversarial"].tolist() == [True, False, False, False]
    two_of_three = adversarial_samples(target, verifiers[:2], images, labels, "all")
    assert two_of_three["adversarial"].tolist() == [True, False, False, False]
    with pytest.raises(InversionError, match="at least one"):
        adversarial_samples(target, [], images, labels)


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory) -> str:
    """The last.ckpt of a two-step run."""
    folder = tmp_path_factory.mktemp("generator")
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=folder, save_last=True)
    trainer = quiet_trainer(
        max_steps=2, limit_val_batches=0, enable_checkpointing=True, callbacks=[checkpoint]
    )
    trainer.fit(_module(), datamodule=_data())
    return str(folder / "last.ckpt")


def test_generate_writes_folders_that_evaluate_scores(trained_checkpoint, tmp_path):
    generator = generator_from_checkpoint(trained_checkpoint)
    images, labels = sample_classes(generator, [2, 5], per_class=3, seed=1)
    again, _ = sample_classes(generator, [2, 5], per_class=3, seed=1)
    torch.testing.assert_close(images, again)  # seeded, dropout included
    assert labels.tolist() == [2, 2, 2, 5, 5, 5]
    out = tmp_path / "samples"
    summary = generate.main(["--ckpt", trained_checkpoint, "--out", str(out), "--per-class", "2"])
    assert summary["samples"] == 20
    assert sorted(p.name for p in (out / "images").iterdir()) == [str(c) for c in range(10)]
    assert (out / "sheet.png").is_file()
    results = tmp_path / "results"
    options = ["--verifiers", "digits:mlp", "--feature", "none", "--out", str(results)]
    evaluate.main(["folder", str(out / "images"), *options, "--name", "g"])
    scored = json.loads((results / "g.json").read_text())
    assert scored["metrics"]["images"] == 20
    with pytest.raises(InversionError, match="not empty"):
        write_class_folders(images, labels, out)


def test_generate_adversarial_mode(trained_checkpoint, tmp_path):
    with pytest.raises(InversionError, match="needs --verifiers"):
        generate.main(["--ckpt", trained_checkpoint, "--out", str(tmp_path / "a"), "--adversarial"])
    generator = generator_from_checkpoint(trained_checkpoint)
    images, labels = sample_classes(generator, range(10), per_class=4, seed=3)
    target = build_classifier("digits:cnn").freeze()
    verifier = build_classifier("digits:mlp").freeze()
    found = adversarial_samples(target, [verifier], images, labels)
    expected = (target(images).argmax(1) == labels) & (verifier(images).argmax(1) != labels)
    assert torch.equal(found["adversarial"], expected)
    assert expected.any()  # else the command below has nothing to write
    out = tmp_path / "adv"
    options = ["--per-class", "4", "--seed", "3", "--verifiers", "digits:mlp"]
    summary = generate.main(
        ["--ckpt", trained_checkpoint, "--out", str(out), "--adversarial", *options]
    )
    assert summary["adversarial"] == int(expected.sum()) == len(list(out.glob("images/*/*.png")))
    assert summary["adversarial_rate"] == pytest.approx(float(expected.float().mean()))


def test_digits_config_logs_grids_and_metrics_to_tensorboard(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py"])
    cli = train.main(
        [
            "fit",
            "--config",
            str(REPO / "configs/digits/conditioned_generator.yaml"),
            "--trainer.max_epochs=1",
            "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false",
            "--trainer.log_every_n_steps=1",
            "--data.init_args.batches_per_epoch=2",
            "--data.init_args.batch_size=20",
            "--data.init_args.val_per_class=2",
            "--model.init_args.width=8",
        ]
    )
    log_dir = Path(cli.trainer.log_dir)
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"val/target_top1", "val/feature_cosine", "val/top1_verifiers", "train/loss"} <= scalars
    assert "val/fid_digits-resnet" in scalars
    assert "val/images" in events.Tags()["images"]
    assert list((log_dir / "images").glob("val-*.png"))
    assert (log_dir / "checkpoints" / "last.ckpt").is_file()
