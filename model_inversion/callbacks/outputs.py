"""The contract between image-producing modules and the callbacks: one typed dict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from torch import Tensor

from inversion.errors import InversionError

CONTRACT = (
    "validation_step/test_step must return a dict {'images': N x C x H x W in [0, 1], "
    "'labels': optional N target classes, 'reference': optional real images, "
    "'originals': optional real images that 'images' reconstruct, same shape, "
    "'depths': optional {name: N x C x H x W images}}"
)


class _Images(TypedDict):
    images: Tensor


class ProducedImages(_Images, total=False):
    """What a module's ``validation_step``/``test_step`` returns for the callbacks.

    Only ``images`` is required; every other key is either present with a value or absent
    (``None`` values are dropped by :func:`produced_images`). Other keys a step returns
    (e.g. an ``index``) are not part of the contract and are not passed on.

    Attributes:
        images: ``N x C x H x W`` (C is 1 or 3) float images in [0, 1], the images the
            method produced. Every callback reads them.
        labels: ``N`` target classes of ``images`` (a negative class: no target). Read by
            the verifier top-k metrics (``ImageMetrics``), the class grids (``ImageGrid``)
            and ``SaveImages``'s class folders; without them there is no accuracy.
        reference: Real images (any N, same C) for FID/KID in ``ImageMetrics``.
        originals: Real images that ``images`` reconstruct, the same shape as ``images``:
            the reconstruction metrics (PSNR, SSIM, re-classification agreement) and the
            "original | reconstruction" pairs of ``ImageGrid`` and ``DepthGrid``.
        depths: ``{name: N x C' x H' x W' images}`` in column order, e.g. the
            reconstruction from each layer of a layer-wise inverter, or a GAN inversion's
            corrupted / repaired / reconstructed images; shown by ``DepthGrid`` beside
            ``originals``.
    """

    labels: Tensor
    reference: Tensor
    originals: Tensor
    depths: dict[str, Tensor]


def _shape(value: Any) -> object:
    return tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__


def _fail(detail: str) -> InversionError:
    return InversionError(f"{CONTRACT}; {detail}.")


def produced_images(outputs: Any) -> ProducedImages | None:
    """Return the produced-images dict of a step, or None if the step produced none.

    Raises:
        InversionError: If the step returned something that breaks the contract.
    """
    if outputs is None:
        return None
    if not isinstance(outputs, Mapping) or "images" not in outputs:
        kind = type(outputs).__name__
        keys = f" with keys {sorted(outputs)}" if isinstance(outputs, Mapping) else ""
        raise _fail(f"got a {kind}{keys}")
    images = outputs["images"]
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise _fail(f"'images' has shape {_shape(images)}")
    produced = ProducedImages(images=images)
    n = len(images)
    labels = outputs.get("labels")
    if labels is not None:
        if not isinstance(labels, Tensor) or labels.ndim != 1 or len(labels) != n:
            raise _fail(f"'labels' has shape {_shape(labels)}, 'images' {tuple(images.shape)}")
        produced["labels"] = labels
    reference = outputs.get("reference")
    if reference is not None:
        if not isinstance(reference, Tensor) or reference.ndim != 4:
            raise _fail(f"'reference' has shape {_shape(reference)}")
        produced["reference"] = reference
    originals = outputs.get("originals")
    if originals is not None:
        if not isinstance(originals, Tensor) or originals.shape != images.shape:
            shapes = f"{_shape(originals)}, 'images' {tuple(images.shape)}"
            raise _fail(f"'originals' has shape {shapes}")
        produced["originals"] = originals
    depths = outputs.get("depths")
    if depths is not None:
        if not isinstance(depths, Mapping):
            raise _fail(f"'depths' is a {type(depths).__name__}, not a mapping")
        for name, value in depths.items():
            if not isinstance(name, str) or not isinstance(value, Tensor) or value.ndim != 4:
                raise _fail(f"'depths'[{name!r}] has shape {_shape(value)}")
            if len(value) != n:
                raise _fail(f"'depths'[{name!r}] has {len(value)} images, 'images' {n}")
        produced["depths"] = dict(depths)
    return produced
