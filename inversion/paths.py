"""Where the project caches what it produces (the embedded model zoo)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import filelock
import torch

from inversion.errors import InversionError

CACHE_ENV_VAR = "INVERSION_CACHE"
LOCK_TIMEOUT_ENV_VAR = "INVERSION_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 1800.0  # seconds: first use trains a zoo model, which takes minutes


def cache_dir() -> Path:
    """Return the cache directory, creating it if needed.

    The directory is ``$INVERSION_CACHE`` when set, otherwise
    ``$XDG_CACHE_HOME/model-inversion`` (``~/.cache/model-inversion``).
    """
    root = os.environ.get(CACHE_ENV_VAR)
    if root:
        path = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(xdg) / "model-inversion"
    path.mkdir(parents=True, exist_ok=True)
    return path


def lock_timeout() -> float:
    """Seconds to wait for a cache lock: ``$INVERSION_LOCK_TIMEOUT``, default 30 minutes.

    A negative value waits without limit.

    Raises:
        InversionError: If the variable is not a number.
    """
    text = os.environ.get(LOCK_TIMEOUT_ENV_VAR, "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT
    try:
        return float(text)
    except ValueError:
        raise InversionError(
            f"{LOCK_TIMEOUT_ENV_VAR}={text!r} is not a number of seconds; set it to e.g. 3600 "
            "(a negative value waits without limit) or unset it for the default of "
            f"{DEFAULT_LOCK_TIMEOUT:.0f}."
        ) from None


@contextlib.contextmanager
def file_lock(path: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` so parallel processes (DDP ranks) do work once.

    The lock is ``path`` with the suffix ``.lock`` (a :class:`filelock.FileLock`, on any
    operating system); the operating system releases it when its holder exits.

    Args:
        path: The file (or folder) the work produces.
        timeout: Seconds to wait for another holder (default: :func:`lock_timeout`).

    Raises:
        InversionError: If another process holds the lock for longer than ``timeout``,
            naming the lock file and what to do.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_suffix(".lock")
    seconds = lock_timeout() if timeout is None else timeout
    lock = filelock.FileLock(lock_path, timeout=seconds)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise InversionError(
            f"Waited {seconds:g} s for the lock {lock_path}, which another process holds (a "
            "DDP rank or another job building the same cache entry). Wait for that process "
            "to finish or stop it (if none is running, delete the lock file), or set "
            f"{LOCK_TIMEOUT_ENV_VAR}=SECONDS to wait longer (negative: no limit)."
        ) from None
    try:
        yield
    finally:
        lock.release()


def cached_torch_file(path: Path, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``build()``'s result, computed once and kept at ``path`` (trained on first use).

    Parallel processes (DDP ranks, concurrent jobs) wait on a lock beside the file and only
    one builds; the file is written atomically and read with ``weights_only=True``.
    """
    from inversion.models.weights import load_checkpoint_file  # (imports the zoo, which needs us)

    if not path.is_file():
        with file_lock(path):
            if not path.is_file():
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                torch.save(build(), tmp)
                os.replace(tmp, path)
    return load_checkpoint_file(path)
