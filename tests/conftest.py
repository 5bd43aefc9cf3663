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


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init InceptionV3 weights file in torch-fidelity's format."""
    from benchmarks.inception_weights import make_random_inception_weights

    return make_random_inception_weights(tmp_path_factory.mktemp("inception") / "inc.pth")


@pytest.fixture(scope="session")
def two_image_folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two folders of 24 random RGB PNGs (32 x 32) from different distributions."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("folders")
    rng = np.random.default_rng(0)
    folders = []
    for name, low, high in (("a", 0, 200), ("b", 60, 255)):
        folder = root / name
        folder.mkdir()
        for i in range(24):
            pixels = rng.integers(low, high, size=(32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
        folders.append(folder)
    return folders[0], folders[1]
