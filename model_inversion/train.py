"""Command-line entry point: ``inversion-train {fit,validate,test,predict} --config FILE``.

(``python train.py ...`` in a checkout.) A LightningCLI over every LightningModule in
``lightning_modules`` and every DataModule in ``datamodules``, chosen by short class name
in YAML::

    model:
      class_path: ClassifierModule
      init_args: {classifier: digits:resnet}
    data:
      class_path: DigitsDataModule

Configs compose: ``--config digits/classifier.yaml --config trainer/cpu.yaml --config
logging/csv.yaml`` (later files override earlier ones; names are files, or relative to the
shipped configs). Unless a config names a logger, TensorBoard logs, checkpoints and the
resolved config go to ``runs/<name>/version_N``, ``<name>`` being the first config file's
name without its suffix.
"""

from __future__ import annotations

import sys
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

import callbacks  # noqa: F401  (registers the callbacks for short class names)
import datamodules  # noqa: F401  (registers the DataModules for short class names)
import lightning_modules  # noqa: F401  (registers the modules for short class names)
from inversion.errors import exit_on_user_error
from lightning_modules.base import BaseTask
from model_inversion.config_files import (
    first_config_stem,
    name_unnamed_loggers,
    resolve_config_args,
)

DEFAULT_RUN_NAME = "default"  # when no config file is given


def trainer_defaults(run_name: str) -> dict:
    """The Trainer's defaults: a TensorBoard logger in ``runs/<run_name>``."""
    return {
        "logger": {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": "runs", "name": run_name},
        },
    }


class InversionCLI(LightningCLI):
    """LightningCLI that names the run after the first config file.

    The default logger carries the name (a logger class a config swaps in takes it over
    when it has a ``name`` parameter); a logger configured with no run name of its own
    (say MLflow's ``experiment_name``) gets it after parsing.
    """

    def __init__(self, *args: Any, run_name: str = DEFAULT_RUN_NAME, **kwargs: Any) -> None:
        self.run_name = run_name
        super().__init__(*args, **kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse, then give a configured logger with no run name the run's name."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        name_unnamed_loggers(config.get("trainer.logger"), self.run_name)


def main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Run the CLI (``args`` replaces ``sys.argv[1:]``; used by the tests)."""
    args = resolve_config_args(sys.argv[1:] if args is None else args)
    run_name = first_config_stem(args) or DEFAULT_RUN_NAME
    return InversionCLI(
        BaseTask,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults=trainer_defaults(run_name),
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
        run_name=run_name,
    )


def run_from_command_line() -> None:
    """Run the CLI; bad input ends in its one-line message and exit status 2."""
    exit_on_user_error(main)


if __name__ == "__main__":
    run_from_command_line()
