"""Listing and reading image files (class-subfolder or flat layouts), torch-only.

Layouts: class subfolders holding images (``root/<class>/<image>``, as in ImageNet) or
images directly inside ``root`` (labels -1). Class folders are labelled by one rule,
:func:`class_labels`, used by every reader (``ImageFolderDataModule``, ``evaluate.py``,
FID references, layer-wise evaluation); images are decoded by one loader,
:func:`open_image`.
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


# 16- and 32-bit integer modes: PIL's convert("L") clips them to 255 (saturated white), so
# they are scaled here; 16-bit values span 0..65535 (mode "I" is how PIL reads some)
_WIDE_INTEGER_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_WIDE_MAX = 65535


def class_labels(names: list[str]) -> dict[str, int]:
    """The label of each class folder: the one rule of every folder reader here.

    If every name is a non-negative integer written in decimal digits (``0``, ``7``,
    ``207``, ``007``), the label is that number, so folders named by class index (as
    ``generate.py`` and ``SaveImages`` write them) keep their classes whichever are
    present: folders ``3`` and ``7`` are classes 3 and 7, and ``1``, ``2``, ``10`` are
    1, 2 and 10. Otherwise the label is the position in sorted name order, so ImageNet
    synset folders (``n01440764``, ...) map to the standard indices 0..999.

    Args:
        names: The class folder names.

    Returns:
        ``{name: label}``.

    Raises:
        InversionError: If two numeric names are the same number (``7`` and ``07``).
    """
    if names and all(name.isdecimal() and name.isascii() for name in names):
        labels = {name: int(name) for name in names}
        if len(set(labels.values())) < len(labels):
            by_number: dict[int, list[str]] = {}
            for name, number in labels.items():
                by_number.setdefault(number, []).append(name)
            clash = next(group for group in by_number.values() if len(group) > 1)
            raise InversionError(
                f"Class folders {' and '.join(sorted(clash))} are the same class number; "
                "folders named by numbers are labelled by that number, so merge or rename "
                "them."
            )
        return labels
    return {name: index for index, name in enumerate(sorted(names))}


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _direct_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _visible(p) and _is_image(p))


def scan_image_folder(root: str | Path) -> tuple[list[Path], list[int], list[str]]:
    """List the images of a folder in class layout or flat layout.

    The folder is in class layout when at least one of its subfolders directly holds images;
    then every (non-hidden) subfolder is a class, labelled by :func:`class_labels` (numeric
    names by their number, others by sorted position). Otherwise it is in flat layout
    when it directly holds images. Files are sorted by path, so the result is
    deterministic.

    Args:
        root: The folder to scan.

    Returns:
        ``(files, labels, class_names)``. In class layout, ``class_names`` are the folder
        names in label order and ``labels[i]`` is the label of the folder holding
        ``files[i]``; in flat layout every label is -1 and ``class_names`` is empty.

    Raises:
        InversionError: If ``root`` does not exist or is not a directory, holds no images in
            either layout, holds loose images next to class subfolders, or (class layout)
            has a subfolder without images or two folders of one class number.
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
    label_of = class_labels(list(subfolders))
    class_names = sorted(subfolders, key=lambda name: label_of[name])
    files: list[Path] = []
    labels: list[int] = []
    for name in class_names:
        files.extend(subfolders[name])
        labels.extend([label_of[name]] * len(subfolders[name]))
    return files, labels, class_names


def _to_8_bit(image: Image.Image) -> Image.Image:
    """An image in a mode PIL converts to ``L``/``RGB`` without clipping.

    16-bit (and 32-bit integer) grayscale is scaled from 0..65535 to 0..255 (rounded;
    values outside are clipped), float (``F``) from 0..1; 16-bit colour PNGs are already
    decoded to 8 bits by PIL. Other modes are returned unchanged.
    """
    if image.mode in _WIDE_INTEGER_MODES:
        values = np.asarray(image).astype(np.float64)
        scaled = np.clip(values, 0, _WIDE_MAX) * (255 / _WIDE_MAX)
    elif image.mode == "F":
        scaled = np.clip(np.asarray(image, dtype=np.float64), 0, 1) * 255
    else:
        return image
    return Image.fromarray(np.rint(scaled).astype(np.uint8), "L")


def open_image(path: str | Path, channels: int = 3) -> Image.Image:
    """Decode one image file as 8-bit ``L`` (1 channel) or ``RGB`` (3 channels).

    The one image loader of the project. 16-bit images are scaled to the full 8-bit
    range (a 16-bit white is 255, not clipped: PIL alone saturates them); alpha is
    dropped; grayscale is replicated for 3 channels and colour made luminance for 1.

    Args:
        path: The image file.
        channels: 1 or 3.

    Returns:
        The decoded image (loaded, file closed).

    Raises:
        InversionError: If the file cannot be decoded.
    """
    try:
        with Image.open(path) as image:
            return _to_8_bit(image).convert("L" if channels == 1 else "RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise InversionError(
            f"Cannot read image {path}: {err}. Remove or replace the file."
        ) from err


def read_image_uint8(path: str | Path, channels: int = 3) -> Tensor:
    """Read one image file as a uint8 tensor C x H x W (``L`` for 1 channel, else RGB)."""
    tensor = torch.from_numpy(np.asarray(open_image(path, channels)).copy())
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
