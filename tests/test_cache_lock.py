"""The model-cache lock: portable (filelock, no fcntl), with a timeout and a clear message."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from inversion.errors import InversionError
from inversion.paths import LOCK_TIMEOUT_ENV_VAR, file_lock, lock_timeout

ROOT = Path(__file__).resolve().parents[1]


def hold_lock(path: Path, held: threading.Event, release: threading.Event) -> None:
    with file_lock(path, timeout=5):
        held.set()
        release.wait(10)


@pytest.fixture
def held_lock(tmp_path):
    """A lock on ``tmp_path/entry.pt`` held by another thread until the test ends."""
    path = tmp_path / "entry.pt"
    held, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=hold_lock, args=(path, held, release))
    thread.start()
    assert held.wait(10)
    yield path
    release.set()
    thread.join(10)


def test_lock_held_elsewhere_times_out_with_the_lock_file_named(held_lock):
    start = time.monotonic()
    with pytest.raises(InversionError) as info, file_lock(held_lock, timeout=0.3):
        pass
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert str(held_lock.with_suffix(".lock")) in message
    assert LOCK_TIMEOUT_ENV_VAR in message and "delete the lock file" in message


def test_timeout_comes_from_the_environment(held_lock, monkeypatch):
    monkeypatch.setenv(LOCK_TIMEOUT_ENV_VAR, "0.2")
    assert lock_timeout() == 0.2
    with pytest.raises(InversionError, match="Waited 0.2 s"), file_lock(held_lock):
        pass


def test_lock_is_free_again_after_release(tmp_path):
    path = tmp_path / "entry.pt"
    with file_lock(path, timeout=1):
        pass
    with file_lock(path, timeout=0.2):  # would time out if the first were still held
        pass


def test_bad_timeout_variable_is_a_user_error(monkeypatch):
    monkeypatch.setenv(LOCK_TIMEOUT_ENV_VAR, "soon")
    with pytest.raises(InversionError, match=LOCK_TIMEOUT_ENV_VAR):
        lock_timeout()
    monkeypatch.delenv(LOCK_TIMEOUT_ENV_VAR)
    assert lock_timeout() == 1800


def test_no_module_imports_fcntl():
    offenders = []
    for folder in ("inversion", "model_inversion", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                if "fcntl" in names:
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_imports_and_locks_without_fcntl(tmp_path):
    """As on Windows: no fcntl module (filelock then falls back to its own lock)."""
    script = f"""
import sys, warnings
sys.modules["fcntl"] = None  # import fcntl now raises ImportError
warnings.simplefilter("ignore")
import inversion, inversion.paths
import model_inversion.lightning_modules, model_inversion.callbacks, model_inversion.datamodules
from pathlib import Path
with inversion.paths.file_lock(Path({str(tmp_path)!r}) / "x.pt", timeout=1):
    pass
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
