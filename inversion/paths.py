"""Where the project caches what it produces (the embedded model zoo)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

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
