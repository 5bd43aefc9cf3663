"""The one rule for unpacking a batch, and for what "unlabelled" means.

A batch is a tensor of images, or a sequence ``(images,)`` / ``(images, labels, ...)``.
A label below 0 (``NO_LABEL``) marks an image without a class (noise, a flat folder).
A batch counts as labelled only when every image in it is: otherwise its labels are
``None``, so metrics never score an image against a class it does not have.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from inversion.errors import InversionError

NO_LABEL = -1


def split_batch(batch: object) -> tuple[Tensor, Tensor | None]:
    """``(images, labels)`` of a batch; labels are None when absent or not all known.

    Raises:
        InversionError: For a batch that holds no image tensor.
    """
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, Sequence) and batch and isinstance(batch[0], Tensor):
        images = batch[0]
        labels = batch[1] if len(batch) > 1 and isinstance(batch[1], Tensor) else None
        if labels is not None and not bool((labels >= 0).all()):
            labels = None
        return images, labels
    raise InversionError(
        "A batch of images is a tensor or a sequence (images, labels); got a "
        f"{type(batch).__name__}."
    )
