"""What ``inversion-evaluate`` and ``inversion-generate`` share: jsonargparse, one-line errors.

Both parse with jsonargparse as ``inversion-train`` does (``--config FILE``,
``--print_config``, the same help), keep the spellings of their earlier argparse options
(``--batch-size``, ``--no-is``, ``--verifiers a b c``), and turn a bad argument into an
:class:`~inversion.errors.InversionError` (one ``error:`` line, exit status 2).
"""

from __future__ import annotations

import json
import re
from argparse import ArgumentError, ArgumentTypeError
from collections.abc import Mapping, Sequence
from typing import Any

from jsonargparse import ArgumentParser, Namespace

from inversion.errors import InversionError, available_device
from model_inversion.config_files import resolve_config_args

# jsonargparse's wording of a few errors, said as the rest of the project says them
RESTRICTED = "Not of type {}: (\\S+) does not conform to restriction {}"
FRIENDLIER = (
    (RESTRICTED.format("PositiveInt", "v>0"), r"must be at least 1, got \1"),
    (RESTRICTED.format("NonNegativeInt", "v>=0"), r"must be at least 0, got \1"),
    (
        r'expected "\w+" to be one of \{(.*)\}, but it was not provided\.?',
        r"a subcommand is required: one of \1",
    ),
    (r'Parser key "([\w.]+)":', r"--\1:"),
)


def new_parser(description: str, prog: str | None = None) -> ArgumentParser:
    """A jsonargparse parser that raises instead of exiting on a bad argument."""
    return ArgumentParser(description=description, prog=prog, exit_on_error=False)


def add_config_argument(parser: ArgumentParser) -> None:
    """``-c/--config FILE`` (a file, or a shipped config's name) and so ``--print_config``."""
    from jsonargparse import ActionConfigFile

    parser.add_argument(
        "-c",
        "--config",
        action=ActionConfigFile,
        help="Path to a configuration file (YAML) of these options.",
    )


def legacy_argv(
    argv: Sequence[str], list_options: Sequence[str], renamed: Mapping[str, str]
) -> list[str]:
    """``argv`` in jsonargparse's spelling.

    ``--batch-size`` becomes ``--batch_size``; an option in ``renamed`` (``--no-is``) its
    replacement (``--inception_score=false``); ``--verifiers a b`` (values up to the next
    option) ``--verifiers=["a", "b"]`` for the options in ``list_options``.
    """
    out: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        arg = items[i]
        i += 1
        if arg in renamed:
            out.append(renamed[arg])
            continue
        if arg.startswith("--") and not arg.startswith("---"):
            name, equals, value = arg.partition("=")
            arg = name.replace("-", "_").replace("__", "--", 1) + equals + value
            if not equals and name.replace("-", "_").removeprefix("__") in list_options:
                values = []
                while i < len(items) and not items[i].startswith("-"):
                    values.append(items[i])
                    i += 1
                if len(values) == 1 and values[0].startswith("["):
                    out += [arg, values[0]]  # already a list
                else:
                    out.append(f"{arg}={json.dumps(values)}")
                continue
        out.append(arg)
    return out


def friendly(message: str) -> str:
    """A jsonargparse error message as one plain sentence."""
    for pattern, replacement in FRIENDLIER:
        message = re.sub(pattern, replacement, message)
    return " ".join(message.split())


def parse(parser: ArgumentParser, argv: Sequence[str]) -> Namespace:
    """Parse ``argv`` (config names resolved); a bad argument is an InversionError."""
    try:
        return parser.parse_args(resolve_config_args(argv))
    except (ArgumentError, ArgumentTypeError) as err:
        raise InversionError(
            f"{parser.prog}: {friendly(str(err))} (see {parser.prog} --help)."
        ) from None


def at_least(value: Any, minimum: int, option: str) -> None:
    """Refuse a number below ``minimum`` (options typed by a signature as plain ``int``)."""
    if value is not None and value < minimum:
        raise InversionError(f"{option} must be at least {minimum}, got {value}.")


def checked_device(text: str) -> str:
    """``--device``: a torch device this machine has (else an InversionError)."""
    try:
        return available_device(text)
    except ArgumentTypeError as err:
        raise InversionError(f"--device {err}.") from None
