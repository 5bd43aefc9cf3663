from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from trainers import quiet_trainer

from inversion import InversionError, build_classifier
from inversion.class_inversion import ClassInverter, build_stages, recipe_from, stage_lr
from model_inversion.datamodules import ClassTargetsDataModule
from model_inversion.datamodules.class_inversion import rank_batches
from model_inversion.lightning_modules import ClassInversion

TINY_PII = {"steps_per_stage": 3, "ensemble": 2}
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_recipes_and_options():
    pii = recipe_from("pii")
    assert (pii.lr, pii.betas, pii.zoom_stages, pii.steps_per_stage) == (0.01, (0.5, 0.99), 7, 400)
    assert recipe_from("deepinversion").bn > 0 and recipe_from("deepdream").bn == 0
    assert recipe_from("pii", {"ensemble": 8}).ensemble == 8
    with pytest.raises(InversionError, match="Unknown recipe options \\['ensemble_size'\\]"):
        recipe_from("pii", {"ensemble_size": 8})
    with pytest.raises(InversionError, match="choose one of"):
        recipe_from("pi")


def test_stage_schedules():
    assert [s.size for s in build_stages(recipe_from("pii"), 224)] == [
        56,
        84,
        112,
        140,
        168,
        196,
        224,
    ]
    di = build_stages(recipe_from("deepinversion"), 224)
    assert [(s.size, s.pool, s.steps) for s in di] == [(224, 2, 2000), (224, 1, 1000)]
    recipe = recipe_from("deepinversion")
    assert stage_lr(recipe, 0, 1000) == pytest.approx(recipe.lr / 100)  # warm-up
    assert stage_lr(recipe, 99, 1000) == pytest.approx(recipe.lr)
    assert stage_lr(recipe, 999, 1000) < 1e-4 * recipe.lr + 1e-6  # cosine to ~0


def test_adaptive_deepinversion_competition_term():
    teacher = build_classifier("digits:cnn").freeze()
    recipe = recipe_from(
        "deepinversion", {"competition": 0.2, "steps_per_stage": 2, "low_res_steps": 0}
    )
    with pytest.raises(InversionError, match="needs a student"):
        ClassInverter(teacher, recipe, 32, 1)
    inverter = ClassInverter(teacher, recipe, 32, 1, student=build_classifier("digits:mlp"))
    inverter.start(torch.tensor([1, 2]))
    parts = inverter.step()
    # the reference's clamped 1 - JS lies in [0, 1] (the exact form's in [1 - ln 2, 1])
    assert 0.0 <= float(parts["competition"]) / 0.2 <= 1.0 + 1e-6


def test_deepinversion_needs_batch_norm():
    with pytest.raises(InversionError, match="batch norm"):
        ClassInverter(build_classifier("digits:vit").freeze(), recipe_from("deepinversion"), 32, 1)


@pytest.mark.parametrize("recipe", ["pii", "deepinversion", "deepdream"])
def test_inversion_reaches_the_target_classes(recipe):
    model = build_classifier("digits:cnn").freeze()
    # short schedules; PII with a milder ColorShift to converge within them
    pii = {
        "steps_per_stage": 25,
        "ensemble": 2,
        "color_shift_mean": 0.25,
        "color_shift_log_std": 0.25,
    }
    options = pii if recipe == "pii" else {"steps_per_stage": 100, "low_res_steps": 100}
    inverter = ClassInverter(
        model, recipe_from(recipe, options), 32, 1, torch.Generator().manual_seed(0)
    )
    labels = torch.arange(10)
    start = torch.rand(10, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    assert (model(start).argmax(1) == labels).float().mean() < 0.5
    images = inverter.invert(labels)
    assert images.shape == (10, 1, 32, 32) and images.min() >= 0 and images.max() <= 1
    assert (model(images).argmax(1) == labels).float().mean() >= 0.8


def test_inversion_is_deterministic_and_resumes_exactly():
    model = build_classifier("digits:cnn").freeze()
    recipe = recipe_from("pii", TINY_PII)
    labels = torch.tensor([3, 5, 7])

    def fresh():
        return ClassInverter(model, recipe, 32, 1, torch.Generator().manual_seed(4))

    full = fresh().invert(labels)
    torch.testing.assert_close(fresh().invert(labels), full, rtol=0, atol=0)
    first = fresh()
    first.start(labels)
    for _ in range(10):  # stops inside the fourth zoom stage
        first.step()
    state = first.state_dict()
    second = fresh()
    second.load_state_dict(state, torch.device("cpu"))
    while not second.finished:
        second.step()
    torch.testing.assert_close(second.result(), full, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("targets", "batch", "world"), [(10, 4, 1), (9, 2, 2), (7, 3, 3), (1000, 25, 8)]
)
def test_rank_batches_cover_targets_once_with_equal_counts(targets, batch, world):
    per_rank = [rank_batches(targets, batch, world, rank) for rank in range(world)]
    assert len({len(b) for b in per_rank}) == 1
    flat = [i for batches in per_rank for b in batches for i in b]
    assert sorted(flat) == list(range(targets))
    assert max(len(b) for batches in per_rank for b in batches) <= batch


def _module(**kwargs) -> ClassInversion:
    return ClassInversion(
        classifier="digits:cnn",
        recipe="pii",
        options=TINY_PII,
        image_size=32,
        channels=1,
        seed=1,
        **kwargs,
    )


def test_module_produces_every_target_once_and_returns_them():
    module = _module()
    data = ClassTargetsDataModule(num_classes=10, classes=[1, 2, 3, 4, 5], batch_size=2)
    trainer = quiet_trainer(devices=1)
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == 3 * 21  # 3 batches x 7 stages x 3 steps
    assert module.times_produced.tolist() == [1] * 5
    outputs = [module.test_step(batch, 0) for batch in data.test_dataloader()]
    labels = torch.cat([o["labels"] for o in outputs])
    images = torch.cat([o["images"] for o in outputs])
    assert labels.tolist() == [1, 2, 3, 4, 5] and images.shape == (5, 1, 32, 32)
    assert "classifier" not in module.state_dict() and not any(
        k.startswith("classifier.") for k in module.state_dict()
    )


def test_each_setup_leaves_one_set_of_batch_norm_hooks():
    """fit, validate and test each build an inverter; the old one's hooks go with it."""
    module = ClassInversion(
        classifier="digits:cnn", recipe="deepinversion",
        options={"steps_per_stage": 2, "low_res_steps": 2, "warmup_steps": 0, "flip": False},
        image_size=32, channels=1, seed=1,
    )  # fmt: skip
    data = ClassTargetsDataModule(num_classes=10, classes=[1, 2], batch_size=2)
    trainer = quiet_trainer(devices=1)
    trainer.fit(module, datamodule=data)

    def hooks() -> int:
        norms = [m for m in module.classifier.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        return sum(len(m._forward_hooks) for m in norms)

    after_fit = hooks()
    assert after_fit > 0
    trainer.validate(module, datamodule=data)
    trainer.test(module, datamodule=data)
    assert hooks() == after_fit


def test_module_checkpoint_resumes_where_it_stopped(tmp_path):
    def data():
        return ClassTargetsDataModule(num_classes=10, classes=[0, 6, 9], batch_size=2)

    every_30 = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=30, save_top_k=-1)
    whole = _module()
    quiet_trainer(devices=1, enable_checkpointing=True, callbacks=[every_30]).fit(
        whole, datamodule=data()
    )
    middle = tmp_path / "epoch=0-step=30.ckpt"  # inside the second batch's schedule
    assert middle.is_file()
    saved = torch.load(middle, weights_only=True)
    assert saved["state_dict"]["times_produced"].tolist() == [1, 1, 0]
    assert not any(k.startswith("classifier") for k in saved["state_dict"])

    resumed = _module()
    quiet_trainer(devices=1).fit(resumed, datamodule=data(), ckpt_path=str(middle))
    assert resumed.times_produced.tolist() == [1, 1, 1]
    torch.testing.assert_close(resumed.produced, whole.produced, rtol=0, atol=0)


class _SaveAt(pl.Callback):
    """Save a checkpoint after each of the given global steps (``step=<n>.ckpt``)."""

    def __init__(self, dirpath, steps) -> None:
        self.dirpath, self.steps = dirpath, set(steps)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step in self.steps:
            trainer.save_checkpoint(self.dirpath / f"step={trainer.global_step}.ckpt")


def _three_targets() -> ClassTargetsDataModule:
    # two batches of targets ([0, 6] then [9]), 21 steps each (7 stages x 3 steps)
    return ClassTargetsDataModule(num_classes=10, classes=[0, 6, 9], batch_size=2)


RESUME_POINTS = {
    "early_in_first_stage": 1,
    "early_in_a_later_stage": 4,  # second stage, first half of the first batch
    "mid_first_batch": 11,
    "at_batch_boundary": 21,  # first batch just finished
    "early_in_second_batch": 23,
    "late_in_second_batch": 40,
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted run, with checkpoints at every resume point."""
    dirpath = tmp_path_factory.mktemp("uninterrupted")
    module = _module()
    trainer = quiet_trainer(devices=1, callbacks=[_SaveAt(dirpath, RESUME_POINTS.values())])
    trainer.fit(module, datamodule=_three_targets())
    assert trainer.global_step == 42
    assert module.times_produced.tolist() == [1, 1, 1]
    return module, dirpath


@pytest.mark.parametrize("step", RESUME_POINTS.values(), ids=RESUME_POINTS.keys())
def test_kill_and_resume_anywhere_gives_the_uninterrupted_run(uninterrupted, step):
    whole, dirpath = uninterrupted
    resumed = _module()
    trainer = quiet_trainer(devices=1)
    trainer.fit(resumed, datamodule=_three_targets(), ckpt_path=dirpath / f"step={step}.ckpt")
    assert trainer.global_step == 42  # ran to the end of the schedule, no further
    assert resumed.times_produced.tolist() == [1, 1, 1]
    torch.testing.assert_close(resumed.produced, whole.produced, rtol=0, atol=0)


def _class_inversion_configs() -> list[Path]:
    return sorted(CONFIGS.glob("*/class_inversion_*.yaml"))


def _checkpoint_callbacks(config: Path) -> list[dict]:
    callbacks = yaml.safe_load(config.read_text())["trainer"]["callbacks"]
    return [c for c in callbacks if c["class_path"].endswith("ModelCheckpoint")]


def test_every_class_inversion_config_checkpoints_the_finished_run():
    configs = _class_inversion_configs()
    assert len(configs) >= 9
    for config in configs:
        kinds = [c.get("init_args", {}) for c in _checkpoint_callbacks(config)]
        assert any(k.get("every_n_train_steps") for k in kinds), config  # resumable mid-run
        assert {"every_n_epochs": 1, "save_on_train_epoch_end": True} in [
            {k: v for k, v in args.items() if k in ("every_n_epochs", "save_on_train_epoch_end")}
            for args in kinds
            if args.get("save_last")
        ], config  # and last.ckpt is written when the schedule ends


def test_last_checkpoint_holds_the_finished_run(uninterrupted, tmp_path):
    """every_n_train_steps=20 does not divide the 42 steps: last.ckpt must still be step 42."""
    whole, _ = uninterrupted
    callbacks = []
    for entry in _checkpoint_callbacks(CONFIGS / "digits" / "class_inversion_pii.yaml"):
        args = dict(entry.get("init_args", {}), dirpath=str(tmp_path))
        if "every_n_train_steps" in args:
            args["every_n_train_steps"] = 20
        callbacks.append(pl.callbacks.ModelCheckpoint(**args))
    trainer = quiet_trainer(devices=1, enable_checkpointing=True, callbacks=callbacks)
    trainer.fit(_module(), datamodule=_three_targets())
    last = tmp_path / "last.ckpt"
    assert sorted(p.name for p in tmp_path.glob("last*")) == ["last.ckpt"]
    assert torch.load(last, weights_only=True)["global_step"] == 42

    loaded = ClassInversion.load_from_checkpoint(last)
    assert loaded.times_produced.tolist() == [1, 1, 1]
    assert (loaded.produced.flatten(1).abs().amax(1) > 0).all()  # no black image
    torch.testing.assert_close(loaded.produced, whole.produced, rtol=0, atol=0)
    # and what `train.py test --ckpt_path last.ckpt` scores is those images
    tested = _module()
    outputs = []

    class Collect(pl.Callback):
        def on_test_batch_end(self, trainer, pl_module, out, batch, batch_idx, dl_idx=0):
            outputs.append(out["images"])

    quiet_trainer(devices=1, callbacks=[Collect()]).test(
        tested, datamodule=_three_targets(), ckpt_path=last
    )
    torch.testing.assert_close(torch.cat(outputs), whole.produced, rtol=0, atol=0)


def test_plain_ddp_is_refused_with_a_hint():
    module = _module()
    trainer = quiet_trainer(devices=2, strategy="ddp_spawn")
    with pytest.raises(Exception, match="ddp_independent"):
        trainer.fit(module, datamodule=ClassTargetsDataModule(num_classes=10, classes=[1, 2]))
    # on one device too (torch's own error would come later, and say less)
    module.trainer = quiet_trainer(devices=1, strategy="ddp")
    module.trainer.datamodule = ClassTargetsDataModule(num_classes=10, classes=[1, 2])
    with pytest.raises(InversionError, match="ddp_independent"):
        module.setup("fit")


def test_two_process_ddp_produces_each_target_exactly_once():
    module = _module()
    data = ClassTargetsDataModule(num_classes=10, classes=[0, 1, 2, 3, 4, 5, 6], batch_size=2)
    trainer = quiet_trainer(devices=2, strategy="ddp_spawn_independent")
    trainer.fit(module, datamodule=data)
    assert module.times_produced.tolist() == [1] * 7
    assert (module.produced.flatten(1).std(1) > 0).all()  # every slot holds an image
