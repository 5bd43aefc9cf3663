"""A tiny stand-in for CIFAR-10 in the official python-pickle format (random pixels)."""

import pickle
from pathlib import Path

import numpy as np

from inversion.data.cifar import FOLDER, TEST_FILES, TRAIN_FILES


def write_fake_cifar10(root: Path, per_file: int = 8, seed: int = 0) -> Path:
    """Write ``per_file`` random images into each batch file; returns ``root``."""
    rng = np.random.default_rng(seed)
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for name in TRAIN_FILES + TEST_FILES:
        entry = {
            b"data": rng.integers(0, 256, size=(per_file, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, size=per_file)],
            b"batch_label": name.encode(),
        }
        with open(folder / name, "wb") as handle:
            pickle.dump(entry, handle)
    return root
