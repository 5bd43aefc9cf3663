"""Config files by name, and the default run name: shared by the three command lines.

The configs ship with the package (``model_inversion/configs`` once installed, the
repository's ``configs/`` in a checkout), so ``--config digits/classifier.yaml`` (or
``configs/digits/classifier.yaml``) names one from any working directory. A file that
exists where the user points wins over a shipped config of the same name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inversion.errors import InversionError

CONFIG_FLAGS = ("--config", "-c")
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
# the run-name parameters of Lightning's loggers (TensorBoard, CSV, W&B: name; MLflow:
# experiment_name) and the values that mean "not chosen" (None, Lightning's placeholder,
# and the CLI's own default when no config file is given)
RUN_NAME_PARAMETERS = ("name", "experiment_name")
UNNAMED = (None, "", "lightning_logs", "default")


def configs_folder() -> Path | None:
    """The shipped configs: installed package data, else the checkout's ``configs/``."""
    package = Path(__file__).resolve().parent
    installed = package / "configs"
    if installed.is_dir():
        return installed
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "configs").is_dir():
        return checkout / "configs"
    return None


def shipped_config_names() -> list[str]:
    """Every shipped config as it can be named (``digits/classifier.yaml``, ...)."""
    folder = configs_folder()
    if folder is None:
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.yaml"))


def resolve_config(value: str) -> str:
    """The file a ``--config`` value names.

    An existing file (or YAML text) is taken as it is; otherwise a name relative to the
    shipped configs (``digits/classifier.yaml``, with or without a leading ``configs/``).

    Raises:
        InversionError: For a file name that is neither a file nor a shipped config.
    """
    if "\n" in value or not value.endswith(CONFIG_SUFFIXES) or Path(value).exists():
        return value
    folder = configs_folder()
    name = Path(value).as_posix().removeprefix("./").removeprefix("configs/")
    if folder is not None and not Path(name).is_absolute():
        candidate = (folder / name).resolve()
        if candidate.is_file() and candidate.is_relative_to(folder.resolve()):
            return str(candidate)
    where = f"a config name under {folder}" if folder else "a shipped config"
    raise InversionError(
        f"Config {value!r} not found: it is neither a file here nor {where} "
        "(e.g. digits/classifier.yaml, paper/..., trainer/cpu.yaml, logging/csv.yaml)."
    )


def resolve_config_args(args: Sequence[str]) -> list[str]:
    """``args`` with every ``--config``/``-c`` value resolved by :func:`resolve_config`."""
    resolved: list[str] = []
    follows_flag = False
    for arg in args:
        if follows_flag:
            resolved.append(resolve_config(arg))
        elif arg.startswith("--config="):
            resolved.append("--config=" + resolve_config(arg.removeprefix("--config=")))
        else:
            resolved.append(arg)
        follows_flag = arg in CONFIG_FLAGS
    return resolved


def first_config_stem(args: Sequence[str]) -> str | None:
    """The file name, without its suffix, of the first config file in ``args``."""
    for i, arg in enumerate(args):
        value = None
        if arg in CONFIG_FLAGS and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--config="):
            value = arg.removeprefix("--config=")
        if value is not None and "\n" not in value and value.endswith(CONFIG_SUFFIXES):
            return Path(value).stem
    return None


def name_unnamed_loggers(logger: Any, name: str) -> None:
    """Give each configured logger whose run name is unset ``name`` (in place).

    ``logger`` is the parsed ``trainer.logger``: a class config (``class_path`` and
    ``init_args``), a list of them, or a bool/None (left alone).
    """
    for each in logger if isinstance(logger, list) else [logger]:
        init_args = getattr(each, "init_args", None)
        if init_args is None:
            continue
        for key in RUN_NAME_PARAMETERS:
            if key in init_args:
                if init_args[key] in UNNAMED:
                    init_args[key] = name
                break
