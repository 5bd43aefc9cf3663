"""The private Lightning attributes the project uses exist on the installed Lightning.

When an upgrade moves one, these tests fail naming it (and so does the code at run time).
"""

from __future__ import annotations

import re
from pathlib import Path

import lightning
import lightning.pytorch as pl
import pytest
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from packaging.requirements import Requirement

from model_inversion.lightning_modules import lightning_internals as internals

ROOT = Path(__file__).resolve().parents[1]


def bare_trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_installed_lightning_is_in_the_tested_range():
    text = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python 3.11+)
    pins = [Requirement(d) for d in re.findall(r'^\s*"(lightning[<>=!~ ][^"]*)"', text, re.M)]
    assert len(pins) == 1 and str(pins[0].specifier) == str(
        Requirement(f"lightning{internals.TESTED_LIGHTNING}").specifier
    )
    assert pins[0].specifier.contains(lightning.__version__), (
        f"lightning {lightning.__version__} is outside the tested range {pins[0].specifier}: "
        "run these tests and widen the bound in pyproject.toml and lightning_internals.py"
    )


def test_manual_step_counter_advances():
    """The counter ``trainer.global_step`` reads under manual optimisation."""
    trainer = bare_trainer()
    progress = internals.lightning_attribute(trainer, internals.MANUAL_STEP_PROGRESS)
    before = progress.total.completed
    internals.count_manual_optimizer_step(trainer)
    internals.count_manual_optimizer_step(trainer)
    assert progress.total.completed == before + 2


def test_epoch_loop_step_limit():
    trainer = bare_trainer()
    assert internals.epoch_max_steps(trainer) == -1
    internals.set_epoch_max_steps(trainer, 7)
    assert internals.epoch_max_steps(trainer) == 7
    assert bare_trainer(max_steps=3).fit_loop.epoch_loop.max_steps == 3


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ddp", None), ("ddp_find_unused_parameters_true", True), ("ddp_spawn", None)],
)
def test_ddp_kwargs_tell_unused_parameter_search(name, expected):
    strategy = StrategyRegistry.get(name)
    assert isinstance(strategy, DDPStrategy)
    assert internals.ddp_kwargs(strategy).get("find_unused_parameters") is expected
    direct = DDPStrategy(find_unused_parameters=True)
    assert internals.ddp_kwargs(direct) == {"find_unused_parameters": True}


def test_a_moved_attribute_fails_naming_it():
    trainer = bare_trainer()
    with pytest.raises(RuntimeError) as info:
        internals.lightning_attribute(trainer, "fit_loop.epoch_loop.renamed_progress")
    message = str(info.value)
    assert "Trainer.fit_loop.epoch_loop.renamed_progress" in message
    assert "'renamed_progress'" in message and internals.TESTED_LIGHTNING in message


def test_hp_metric_placeholder_switch(tmp_path):
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    logger = TensorBoardLogger(tmp_path)  # default_hp_metric=True
    internals.disable_hp_metric_placeholder([logger, CSVLogger(tmp_path)])
    assert internals.lightning_attribute(logger, internals.HP_METRIC_PLACEHOLDER) is False


def test_grouped_step_internals_exist_on_a_fitted_trainer():
    import lightning.pytorch as pl
    import torch

    from model_inversion.lightning_modules import lightning_internals as li

    seen = {}

    class Probe(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            seen["logs_due"] = li.logs_due(self.trainer)
            seen["loader"] = li.fit_loader(self.trainer)
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(8, 2)), 2)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Probe(), data)
    assert isinstance(seen["logs_due"], bool) and seen["loader"] is not None
    li.restore_loader_position(trainer)  # the attribute is there and callable
    li.scale_epoch_batches(trainer, 2)  # the attribute is there and takes a new count
