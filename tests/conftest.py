"""Shared fixtures. Tests run offline on the CPU.

The embedded zoo is trained once into the normal cache (``$INVERSION_CACHE`` or
``~/.cache/model-inversion``) and reused; its recipe hash keeps stale files out.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # fail fast instead of retrying the hub
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline_hubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may read or write the user's torch hub cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
