"""Where the project caches what it produces (the embedded model zoo)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV_VAR = "INVERSION_CACHE"


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


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` so parallel processes (DDP ranks) do work once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
