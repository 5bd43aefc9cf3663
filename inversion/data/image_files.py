"""Listing and reading image files (class-subfolder or flat layouts), torch-only.

Layouts: class subfolders holding images (``root/<class>/<image>``, as in ImageNet;
classes are the sorted folder names) or images directly inside ``root`` (labels -1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from inversion.errors import InversionError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

_LAYOUTS_HINT = (
    "Accepted layouts: class subfolders holding images (root/<class>/<image>, as in "
    "ImageNet) or images directly inside root (root/<image>); image extensions: "
    + ", ".join(IMAGE_EXTENSIONS)
    + "."
)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _direct_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _visible(p) and _is_image(p))


def scan_image_folder(root: str | Path) -> tuple[list[Path], list[int], list[str]]:
    """List the images of a folder in class layout or flat layout.

    The folder is in class layout when at least one of its subfolders directly holds images;
    then every (non-hidden) subfolder is a class, and classes are indexed in sorted name
    order. Otherwise it is in flat layout when it directly holds images. Files are sorted
    by path, so the result is deterministic.

    Args:
        root: The folder to scan.

    Returns:
        ``(files, labels, class_names)``. In class layout, ``labels[i]`` is the index in
        ``class_names`` of the folder holding ``files[i]``; in flat layout every label is -1
        and ``class_names`` is empty.

    Raises:
        InversionError: If ``root`` does not exist or is not a directory, holds no images in
            either layout, holds loose images next to class subfolders, or (class layout)
            has a subfolder without images.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise InversionError(f"Image folder {root} does not exist; check the path.")
    if not root.is_dir():
        raise InversionError(
            f"Image folder {root} is not a directory; pass the folder that holds the images."
        )
    entries = sorted(p for p in root.iterdir() if _visible(p))
    loose = [p for p in entries if _is_image(p)]
    subfolders = {d.name: _direct_images(d) for d in entries if d.is_dir()}

    if not any(subfolders.values()):
        if not loose:
            raise InversionError(
                f"No images found in {root} (folders nested more than one level deep are "
                f"not searched). {_LAYOUTS_HINT}"
            )
        return loose, [-1] * len(loose), []

    if loose:
        raise InversionError(
            f"{root} mixes class subfolders with {len(loose)} loose image(s) such as "
            f"{loose[0].name}; move the loose images into a class subfolder, or the "
            "subfolders out of it."
        )
    empty = [name for name, images in subfolders.items() if not images]
    if empty:
        raise InversionError(
            f"Class folder(s) {', '.join(empty)} in {root} hold no images; remove them or "
            f"add images. {_LAYOUTS_HINT}"
        )
    class_names = sorted(subfolders)
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(class_names):
        files.extend(subfolders[name])
        labels.extend([index] * len(subfolders[name]))
    return files, labels, class_names


def read_image_uint8(path: str | Path, channels: int = 3) -> Tensor:
    """Read one image file as a uint8 tensor C x H x W (``L`` for 1 channel, else RGB)."""
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    except (OSError, ValueError) as err:
        raise InversionError(
            f"Cannot read image {path}: {err}. Remove or replace the file."
        ) from err
    tensor = torch.from_numpy(array.copy())
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
