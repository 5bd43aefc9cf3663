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
from typing import Any, NoReturn

import lightning.pytorch as pl
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

import model_inversion.callbacks  # noqa: F401  (registers the callbacks for short class names)
import model_inversion.datamodules  # noqa: F401  (registers the DataModules for short class names)
import model_inversion.lightning_modules  # noqa: F401  (registers the modules for short class names)
from inversion.errors import exit_on_user_error
from inversion.models.weights import check_checkpoint_entries, read_run_checkpoint
from model_inversion.config_files import (
    first_config_stem,
    name_unnamed_loggers,
    resolve_config_args,
)
from model_inversion.lightning_modules.base import BaseTask

DEFAULT_RUN_NAME = "default"  # when no config file is given


def trainer_defaults(run_name: str) -> dict:
    """The Trainer's defaults: a TensorBoard logger in ``runs/<run_name>``."""
    return {
        "logger": {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": "runs", "name": run_name},
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
    """LightningCLI that names the run and checks ``--ckpt_path`` before anything reads it.

    The run is named after the first config file: the default logger carries the name (a
    logger class a config swaps in takes it over when it has a ``name`` parameter), and a
    logger configured with no run name of its own (say MLflow's ``experiment_name``) gets
    it after parsing.

    A missing, empty, truncated, unsafe or non-run ``ckpt_path`` is refused right after
    parsing (before Lightning reads its hyperparameters), and a checkpoint of another
    model before the subcommand runs: one ``error:`` line each, not a traceback.
    """

    _checkpoint_entries: set[str] | None = None

    def __init__(self, *args: Any, run_name: str = DEFAULT_RUN_NAME, **kwargs: Any) -> None:
        self.run_name = run_name
        super().__init__(*args, **kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse (config names resolved), name unnamed loggers, check the ``ckpt_path`` file.

        The checkpoint is read by ``read_run_checkpoint``.
        """
        if args is None:  # the command line (LightningCLI warns when given it as args)
            self.config = parser.parse_args(resolve_config_args(sys.argv[1:]))
        else:
            super().parse_arguments(
                parser, resolve_config_args(args) if isinstance(args, list) else args
            )
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        name_unnamed_loggers(config.get("trainer.logger"), self.run_name)
        if subcommand:
            checkpoint = read_run_checkpoint(config.get("ckpt_path"))
            if checkpoint is not None:
                self._checkpoint_entries = set(checkpoint["state_dict"])

    def _check_ckpt_fits(self) -> None:
        if self._checkpoint_entries is not None and self.subcommand:
            path = self.config[self.subcommand].get("ckpt_path")
            check_checkpoint_entries(path, self._checkpoint_entries, self.model)

    before_fit = before_validate = before_test = before_predict = _check_ckpt_fits


def main(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Run the CLI (``args`` replaces ``sys.argv[1:]``; used by the tests)."""
    run_name = first_config_stem(sys.argv[1:] if args is None else args) or DEFAULT_RUN_NAME
    return InversionCLI(
        BaseTask,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        parser_class=OneLineErrorParser,
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
