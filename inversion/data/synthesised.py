"""Folders of synthesised images, stamped by a manifest so that they can be told from real data.

The ``SaveImages`` callback writes the images a module produces as PNG files (in class
subfolders named by class index, or flat) together with ``synthesised.json``: who
produced them and the SHA-256 of every file. :func:`read_synthesised_folder` accepts a
folder only if that stamp is there, every listed file is unchanged, and no other image
sits beside them, so real images cannot be slipped into a synthetic training set.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor

from inversion.data.image_files import IMAGE_EXTENSIONS
from inversion.errors import InversionError

MANIFEST = "synthesised.json"
FORMAT = 1
# Modules whose images come from a model alone, never from real images: their folders may
# train zero-shot inverters. (RealImages returns real images; a reconstruction or a GAN
# trained on the task's data carries real data.)
SYNTHESISERS = ("ClassInversion",)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_png(image: Tensor, path: Path) -> str:
    """Write one C x H x W image in [0, 1] as an 8-bit PNG; return its SHA-256."""
    pixels = image.detach().float().clamp(0, 1).mul(255).round().byte().cpu()
    array = pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path)
    return file_digest(path)


def write_manifest(root: str | Path, files: dict[str, str], producer: dict[str, Any]) -> Path:
    """Stamp ``root``: ``files`` maps paths relative to ``root`` to their SHA-256."""
    path = Path(root) / MANIFEST
    payload = {"format": FORMAT, "producer": producer, "files": dict(sorted(files.items()))}
    path.write_text(json.dumps(payload, indent=1, default=str))
    return path


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The stamp of a folder written by ``SaveImages``, or a clear error if there is none."""
    root = Path(root).expanduser()
    path = root / MANIFEST
    if not root.is_dir():
        raise InversionError(f"Synthesised-image folder {root} does not exist; check the path.")
    if not path.is_file():
        raise InversionError(
            f"{root} is not stamped as synthesised (no {MANIFEST}), so it is refused as "
            "training data for a zero-shot inverter. Produce the folder with the SaveImages "
            "callback (e.g. from class inversion), which writes the stamp."
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InversionError(f"{path} is not valid JSON ({err}); re-create the folder.") from err
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise InversionError(f"{path} is not a synthesised-folder stamp of format {FORMAT}.")
    if not manifest["files"]:
        raise InversionError(f"{path} lists no images; the folder is empty.")
    return manifest


def _label_of(relative: str) -> int:
    parent = Path(relative).parent.name
    return int(parent) if parent.isdigit() else -1


def read_synthesised_folder(root: str | Path, verify: bool = True) -> tuple[list[Path], list[int]]:
    """The files and labels of a stamped folder, checked against its stamp.

    Labels are the class-index subfolder names (-1 for a flat folder).

    Args:
        root: The folder written by ``SaveImages``.
        verify: Check every file's SHA-256 against the stamp.

    Raises:
        InversionError: If the stamp is missing or malformed, its producer is not one of
            :data:`SYNTHESISERS`, a listed file is missing or changed, or an image not
            listed in the stamp is in the folder.
    """
    root = Path(root).expanduser()
    manifest = read_manifest(root)
    producer = (manifest.get("producer") or {}).get("module")
    if producer not in SYNTHESISERS:
        raise InversionError(
            f"{root} was written by {producer}, which does not synthesise images from a model "
            f"alone; only folders of {', '.join(SYNTHESISERS)} can train a zero-shot inverter."
        )
    listed = manifest["files"]
    present = {
        str(p.relative_to(root))
        for p in [*root.iterdir(), *(q for d in root.iterdir() if d.is_dir() for q in d.iterdir())]
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    }
    extra = sorted(present - set(listed))
    if extra:
        raise InversionError(
            f"{root} holds {len(extra)} image(s) its stamp does not list (e.g. {extra[0]}); "
            "only images written by SaveImages may train a zero-shot inverter. Remove them."
        )
    missing = sorted(set(listed) - present)
    if missing:
        raise InversionError(
            f"{root} lacks {len(missing)} image(s) its stamp lists (e.g. {missing[0]}); "
            "re-create the folder."
        )
    if verify:
        changed = [rel for rel, digest in listed.items() if file_digest(root / rel) != digest]
        if changed:
            raise InversionError(
                f"{len(changed)} image(s) of {root} changed since they were synthesised (e.g. "
                f"{changed[0]}); re-create the folder."
            )
    relatives = sorted(listed)
    return [root / rel for rel in relatives], [_label_of(rel) for rel in relatives]
