"""The one exception type users see for bad input, and how entry points report it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, ClassVar


class InversionError(ValueError):
    """Bad input or configuration, with a message that says what to do.

    Raised for unknown classifier specs, missing weights files, specs that need the
    network while offline, empty image folders and mis-sized inputs.

    Argument parsers (jsonargparse under LightningCLI) re-wrap errors raised while
    instantiating classes into their own exceptions; the latest message is kept on the
    class so that entry points can still print it alone (see :func:`user_facing_message`).
    """

    latest: ClassVar[str | None] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        InversionError.latest = message


def user_facing_message(err: BaseException) -> str | None:
    """Return the InversionError message behind ``err``, or None if there is none.

    Looks through the exception chain, and into parser errors that quote the message.
    """
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, InversionError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    latest = InversionError.latest
    if latest and latest in str(err):
        return latest
    return None


def exit_on_user_error(main: Callable[[], Any]) -> Any:
    """Run an entry point; bad input ends in one line ``error: ...`` and exit status 2.

    The message is printed on one line (line breaks inside it become spaces).

    Any other exception keeps its traceback (it is a bug, not bad input).
    """
    try:
        return main()
    except Exception as err:
        message = user_facing_message(err)
        if message is None:
            raise
        print(f"error: {' '.join(message.split())}", file=sys.stderr)  # one line
        sys.exit(2)


def available_device(text: str) -> str:
    """An argparse ``type``: a torch device string this machine has (``cpu``, ``cuda:1``).

    Checked when the arguments are parsed, so ``--device gpu`` or ``--device cuda`` on a
    machine without CUDA is argparse's one-line error, not a traceback mid-run.
    """
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a torch device (e.g. cpu, cuda, cuda:1)"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise argparse.ArgumentTypeError(
                f"{text}: this machine has {count} CUDA device(s); use --device cpu"
                + (f" or cuda:0..{count - 1}" if count else "")
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: MPS is not available here; use --device cpu")
    return text
