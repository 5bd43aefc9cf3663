"""Images and text to every configured logger, whatever its kind.

One helper for every callback and module that shows pictures: TensorBoard gets
``add_image``, W&B its ``log_image``, MLflow an image artifact, and every other logger
(CSV, or any that cannot take images) a PNG file in its own folder. With no logger
nothing is sent and nothing is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from PIL import Image
from torch import Tensor
from torchvision.utils import save_image

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(key: str) -> str:
    """``key`` as a file name that stays in its folder (``val/images`` -> ``val_images``)."""
    return _UNSAFE.sub("_", key).strip("._") or "image"


def _pil(image: Tensor) -> Image.Image:
    pixels = image.mul(255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def _send(logger: Any, key: str, image: Tensor, step: int) -> bool:
    """Send ``image`` through the logger's own image interface; False if it has none."""
    log_image = getattr(logger, "log_image", None)
    if callable(log_image):  # WandbLogger.log_image(key, images, step)
        log_image(key=key, images=[_pil(image)], step=step)
        return True
    experiment = logger.experiment
    if callable(getattr(experiment, "add_image", None)):  # TensorBoard's SummaryWriter
        experiment.add_image(key, image, step)
        return True
    run_id = getattr(logger, "run_id", None)
    if run_id is not None and callable(getattr(experiment, "log_image", None)):  # MLflow
        experiment.log_image(run_id, _pil(image), artifact_file=_png(key, step, "images/"))
        return True
    return False


def _png(key: str, step: int, prefix: str = "") -> str:
    return f"{prefix}{safe_name(key)}_step{step}.png"


def log_image(
    trainer: pl.Trainer,
    key: str,
    image: Tensor,
    step: int | None = None,
    png_name: str | None = None,
) -> list[Path]:
    """Send one image to every logger of ``trainer``; return the PNG files written.

    TensorBoard: ``add_image``; W&B: ``log_image``; MLflow: the artifact
    ``images/<key>_step<step>.png``; any other logger with a folder (CSV): the file
    ``<its log_dir>/images/<key>_step<step>.png``, the key made a plain file name (or
    ``png_name``). Only the global-zero process logs.

    Args:
        trainer: The trainer whose loggers receive the image.
        key: The image's tag, e.g. ``val/images``.
        image: ``C x H x W`` (C is 1 or 3) in [0, 1].
        step: The step to log at (default: ``trainer.global_step``).
        png_name: Also write the image as ``<run dir>/images/<png_name>`` (the run dir is
            ``trainer.log_dir``, or ``default_root_dir`` without a logger), the name
            file-only loggers use too (one file where their folder is the run dir).
    """
    if not trainer.is_global_zero:
        return []
    step = trainer.global_step if step is None else step
    image = image.detach().float().cpu().clamp(0, 1)
    name = safe_name(png_name) if png_name is not None else _png(key, step)
    files: dict[Path, None] = {}  # in order, without duplicates
    if png_name is not None:
        files[Path(trainer.log_dir or trainer.default_root_dir) / "images" / name] = None
    for logger in trainer.loggers:
        if _send(logger, key, image, step):
            continue
        folder = getattr(logger, "log_dir", None) or getattr(logger, "save_dir", None)
        if folder is not None:
            files[Path(folder) / "images" / name] = None
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(image, path)
    return list(files)


def log_text(trainer: pl.Trainer, key: str, text: str, step: int | None = None) -> None:
    """Add ``text`` to every logger that takes text (TensorBoard ``add_text``)."""
    if not trainer.is_global_zero:
        return
    step = trainer.global_step if step is None else step
    for logger in trainer.loggers:
        add_text = getattr(getattr(logger, "experiment", None), "add_text", None)
        if callable(add_text):
            add_text(key, text, step)


def log_scalars(trainer: pl.Trainer, metrics: dict[str, float], step: int | None = None) -> None:
    """Send scalars to every logger at ``step`` (default: ``trainer.global_step``), now.

    For values a callback measures outside ``LightningModule.log`` (which hands values to
    the loggers only every ``log_every_n_steps``). Only the global-zero process logs.
    """
    if not trainer.is_global_zero or not metrics:
        return
    step = trainer.global_step if step is None else step
    for logger in trainer.loggers:
        logger.log_metrics(dict(metrics), step=step)
