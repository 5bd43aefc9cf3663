"""Tiny stand-ins for real data sets: CIFAR-10 files and ImageNet-layout folders (random pixels)."""

import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image

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


CLASSES = ["cat", "ant", "bee"]  # deliberately not sorted
SIZES = [(40, 30), (20, 50), (33, 33), (64, 16)]  # (width, height)


def write_image(path: Path, size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> None:
    """Write a random image, so crops and flips change the pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    w, h = size
    bands = 3 if mode == "RGB" else 1
    data = torch.randint(0, 256, (h, w, bands), generator=gen, dtype=torch.uint8).numpy()
    Image.fromarray(data.squeeze(-1) if bands == 1 else data, mode).save(path)


def write_class_folder(root: Path, classes: list[str] = CLASSES) -> Path:
    for c, name in enumerate(classes):
        for i, size in enumerate(SIZES):
            mode = "L" if (c + i) % 2 else "RGB"
            write_image(root / name / f"img{i}.png", size, mode, seed=10 * c + i)
    return root


def write_imagenet_folder(root: Path, test: bool = False) -> Path:
    write_class_folder(root / "train")
    write_class_folder(root / "val")
    if test:
        write_class_folder(root / "test", ["ant", "bee", "cat"])
        write_image(root / "test" / "ant" / "extra.png", (12, 9))
    return root
