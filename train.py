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

import sys
from typing import NoReturn

import lightning.pytorch as pl
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

import callbacks  # noqa: F401  (registers the callbacks for short class names)
import datamodules  # noqa: F401  (registers the DataModules for short class names)
import lightning_modules  # noqa: F401  (registers the modules for short class names)
from inversion.errors import exit_on_user_error
from inversion.models.weights import check_checkpoint_entries, read_run_checkpoint
from lightning_modules.base import BaseTask

TRAINER_DEFAULTS = {
    "logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "runs", "name": "default"},
    },
}


# lines of jsonargparse's nested union errors that say nothing about the bad value
_PARSE_NOISE = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "- Expected a <class 'NoneType'>",
    "Given value type:",
    "Given value: Namespace(",
    "Given value: NestedArg(",
)


class OneLineErrorParser(LightningArgumentParser):
    """The CLI's parser: a bad option or config is one ``error:`` line, exit status 2.

    jsonargparse prints the whole usage and a nested, many-line message; this keeps the
    lines that name the option, what it expects and what it got, on one line, and points
    to ``--help``. A parser that does not exit on errors (nested parsing) still raises.
    """

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:  # noqa: D102
        if not self.exit_on_error:
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        kept = [
            line.strip()
            for line in message.splitlines()
            if line.strip() and not line.strip().startswith(_PARSE_NOISE)
        ]
        sys.stderr.write(f"error: {' '.join(kept)} (all options: {prog} --help)\n")
        self.exit(2)


class InversionCLI(LightningCLI):
    """LightningCLI that checks ``--ckpt_path`` before anything reads it.

    A missing, empty, truncated, unsafe or non-run file is refused right after parsing
    (before Lightning reads its hyperparameters), and a checkpoint of another model
    before the subcommand runs: one ``error:`` line each, not a traceback.
    """

    _checkpoint_entries: set[str] | None = None

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse, then check the ``ckpt_path`` file (see ``read_run_checkpoint``)."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand:
            checkpoint = read_run_checkpoint(self.config[subcommand].get("ckpt_path"))
            if checkpoint is not None:
                self._checkpoint_entries = set(checkpoint["state_dict"])

    def _check_ckpt_fits(self) -> None:
        if self._checkpoint_entries is not None and self.subcommand:
            path = self.config[self.subcommand].get("ckpt_path")
            check_checkpoint_entries(path, self._checkpoint_entries, self.model)

    before_fit = before_validate = before_test = before_predict = _check_ckpt_fits


def main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Run the CLI (``args`` replaces ``sys.argv[1:]``; used by the tests)."""
    return InversionCLI(
        BaseTask,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_class=OneLineErrorParser,
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
