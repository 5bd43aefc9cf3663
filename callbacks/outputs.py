"""The contract between image-producing modules and the callbacks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from inversion.errors import InversionError

CONTRACT = (
    "validation_step/test_step must return a dict {'images': N x C x H x W in [0, 1], "
    "'labels': optional N target classes, 'reference': optional real images, "
    "'originals': optional real images that 'images' reconstruct, same shape}"
)
KEYS = ("images", "labels", "reference", "originals")


def produced_images(outputs: Any) -> dict[str, Tensor] | None:
    """Return the produced-images dict of a step, or None if the step produced none.

    Raises:
        InversionError: If the step returned something that breaks the contract.
    """
    if outputs is None:
        return None
    if not isinstance(outputs, Mapping) or "images" not in outputs:
        kind = type(outputs).__name__
        keys = f" with keys {sorted(outputs)}" if isinstance(outputs, Mapping) else ""
        raise InversionError(f"{CONTRACT}; got a {kind}{keys}.")
    images = outputs["images"]
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise InversionError(f"{CONTRACT}; 'images' has shape {shape}.")
    originals = outputs.get("originals")
    if originals is not None and (
        not isinstance(originals, Tensor) or originals.shape != images.shape
    ):
        shape = tuple(originals.shape) if isinstance(originals, Tensor) else type(originals)
        raise InversionError(
            f"{CONTRACT}; 'originals' has shape {shape}, 'images' {tuple(images.shape)}."
        )
    return {k: outputs[k] for k in KEYS if outputs.get(k) is not None}
