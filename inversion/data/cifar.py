"""CIFAR-10 from its official "python version" files, read without arbitrary code.

The official archive (``cifar-10-python.tar.gz``) unpacks to ``cifar-10-batches-py/`` with
``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and ``batches.meta``: pickles of
dicts holding a uint8 array (N x 3072) and a list of labels. They are read with an
unpickler that accepts only NumPy arrays and plain containers, so a tampered file cannot
run code. Nothing is downloaded here.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from inversion.errors import InversionError

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class _ArraysOnly(pickle.Unpickler):
    """An unpickler for NumPy arrays and plain containers only."""

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR file")


def find_cifar10(root: str | Path) -> Path:
    """Return the ``cifar-10-batches-py`` folder under ``root`` (or ``root`` itself)."""
    root = Path(root).expanduser()
    for folder in (root / FOLDER, root):
        if all((folder / name).is_file() for name in TRAIN_FILES + TEST_FILES):
            return folder
    raise InversionError(
        f"No CIFAR-10 found in {root}: expected {FOLDER}/ with data_batch_1..5 and "
        "test_batch (the official 'python version' archive, cifar-10-python.tar.gz, "
        "unpacked). Download it once on a machine with a network and give its folder as root."
    )


def read_cifar_batch(path: Path) -> tuple[Tensor, Tensor]:
    """Images (N x 3 x 32 x 32 uint8) and labels (N) of one CIFAR-10 batch file."""
    try:
        with open(path, "rb") as handle:
            entry = _ArraysOnly(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise InversionError(f"{path} is not a CIFAR-10 batch file: {err}") from err
    data = entry.get(b"data") if isinstance(entry, dict) else None
    labels = entry.get(b"labels") if isinstance(entry, dict) else None
    if data is None or labels is None or np.asarray(data).shape[1:] != (3072,):
        raise InversionError(f"{path} is not a CIFAR-10 batch file (no N x 3072 'data').")
    images = torch.from_numpy(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).copy())
    return images, torch.as_tensor(labels, dtype=torch.long)


def load_cifar10(root: str | Path, split: str) -> tuple[Tensor, Tensor]:
    """The ``train`` (50,000) or ``test`` (10,000) split as uint8 images and labels."""
    if split not in ("train", "test"):
        raise InversionError(f"CIFAR-10 has splits 'train' and 'test', not {split!r}.")
    folder = find_cifar10(root)
    parts = [
        read_cifar_batch(folder / name)
        for name in (TRAIN_FILES if split == "train" else TEST_FILES)
    ]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
