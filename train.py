"""Command-line entry point: ``python train.py {fit,validate,test,predict} --config FILE``.

A LightningCLI over every LightningModule in ``lightning_modules`` and every
DataModule in ``datamodules``, chosen by short class name in YAML::

    model:
      class_path: ClassifierModule
      init_args: {classifier: digits:resnet}
    data:
      class_path: DigitsDataModule

TensorBoard logs, checkpoints and the resolved config go to ``runs/<name>/version_N``.
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI

import callbacks  # noqa: F401  (registers the callbacks for short class names)
import datamodules  # noqa: F401  (registers the DataModules for short class names)
import lightning_modules  # noqa: F401  (registers the modules for short class names)
from inversion.errors import exit_on_user_error
from lightning_modules.base import BaseTask

TRAINER_DEFAULTS = {
    "logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "runs", "name": "default"},
    },
}


def main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Run the CLI (``args`` replaces ``sys.argv[1:]``; used by the tests)."""
    return LightningCLI(
        BaseTask,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults=TRAINER_DEFAULTS,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def run_from_command_line() -> None:
    """Run the CLI; bad input ends in its one-line message and exit status 2."""
    exit_on_user_error(main)


if __name__ == "__main__":
    run_from_command_line()
