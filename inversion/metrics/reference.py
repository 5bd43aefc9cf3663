"""Reference (real) images for FID, and their feature statistics, computed once and cached."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from inversion.data.digits import SPLITS, load_digits_split
from inversion.data.image_files import read_image_uint8, scan_image_folder
from inversion.errors import InversionError
from inversion.metrics.fid import FrechetDistance
from inversion.models.weights import load_checkpoint_file
from inversion.paths import cache_dir, file_lock


class ImageFilesDataset(Dataset):
    """Image files as uint8 tensors C x H x W at their own size, with their labels."""

    def __init__(self, files: list[Path], labels: list[int], channels: int = 3) -> None:
        self.files, self.labels, self.channels = files, labels, channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = read_image_uint8(self.files[index], self.channels)
        return image, torch.tensor(self.labels[index])


def _collate_same_size(batch: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    sizes = {tuple(image.shape) for image, _ in batch}
    if len(sizes) > 1:
        raise InversionError(
            f"Images in one folder must share one size to be scored together; found "
            f"{sorted(sizes)[:3]}. Resize them first (FID/IS resize to 299 internally)."
        )
    return torch.stack([image for image, _ in batch]), torch.stack([label for _, label in batch])


def image_files_loader(
    files: list[Path], labels: list[int], batch_size: int = 64, num_workers: int = 0
) -> DataLoader:
    """A loader of ``(uint8 RGB images, labels)`` over image files, in order."""
    return DataLoader(
        ImageFilesDataset(files, labels),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate_same_size,
    )


def folder_loader(folder: str | Path, batch_size: int = 64, num_workers: int = 0) -> DataLoader:
    """A loader of ``(uint8 images, labels)`` over a folder (class or flat layout), in order."""
    files, labels, _ = scan_image_folder(folder)
    return image_files_loader(files, labels, batch_size, num_workers)


def reference_batches(source: str, batch_size: int = 64) -> Iterator[Tensor]:
    """Yield batches of reference images: ``digits:SPLIT`` or an image folder."""
    kind, _, split = source.partition(":")
    if kind == "digits" and split:
        if split not in SPLITS:
            raise InversionError(
                f"Unknown digits split {split!r} in {source!r}; use one of "
                f"{', '.join('digits:' + s for s in SPLITS)}."
            )
        images, _ = load_digits_split(split)
        yield from images.split(batch_size)
        return
    for images, _ in folder_loader(source, batch_size):
        yield images


def _fingerprint_source(source: str) -> str:
    if source.startswith("digits:"):
        return source
    files, _, _ = scan_image_folder(source)
    digest = hashlib.sha1(str(Path(source).resolve()).encode())
    for path in files:
        stat = os.stat(path)
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def fingerprint_module(module: nn.Module) -> str:
    """A hash of a module's weights (so cached statistics follow the weights)."""
    digest = hashlib.sha1()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(
            tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()


def _cache_path(extractor: nn.Module, source: str, kind: str = "") -> Path:
    key = hashlib.sha1(
        f"{fingerprint_module(extractor)}|{_fingerprint_source(source)}".encode()
    ).hexdigest()[:16]
    return cache_dir() / "fid_reference" / f"{extractor.name}-{key}{kind}.pt"


def reference_statistics(
    extractor: nn.Module, source: str, batch_size: int = 64, progress: bool = True
) -> tuple[Tensor, Tensor, int]:
    """Mean, covariance and count of ``extractor`` pool features over a reference source.

    Cached in ``$INVERSION_CACHE/fid_reference/`` under a key made of the extractor's
    weights and the source (the digits split, or the folder's file names, sizes and
    modification times), so real images are embedded once (statistics are derived from
    cached :func:`reference_features` where those exist).
    """
    path = _cache_path(extractor, source)
    with file_lock(path):
        if not path.is_file():
            _write_statistics(extractor, source, batch_size, progress, path)
    cached = load_checkpoint_file(path)  # safe; a corrupt cache file is named
    return cached["mean"], cached["cov"], int(cached["n"])


def reference_features(
    extractor: nn.Module, source: str, batch_size: int = 64, progress: bool = True
) -> Tensor:
    """The ``extractor`` pool features (N x D, float32, source order) of a reference source.

    KID needs the features themselves; cached beside the statistics
    (``<name>-<key>-features.pt``), under the same key.
    """
    path = _cache_path(extractor, source, "-features")
    with file_lock(path):
        if not path.is_file():
            features = torch.cat(list(_embedded(extractor, source, batch_size, progress)))
            _save(path, {"features": features, "source": source})
    return load_checkpoint_file(path)["features"]


def _save(path: Path, record: dict) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(record, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def _embedded(
    extractor: nn.Module, source: str, batch_size: int, progress: bool
) -> Iterator[Tensor]:
    """Pool features (float32, on the CPU) of the reference images, batch by batch."""
    device = next(extractor.parameters()).device
    batches = reference_batches(source, batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=f"reference features ({source})", leave=False)
    empty = True
    for images in batches:
        empty = False
        yield extractor(images.to(device))[0].float().cpu()
    if empty:
        raise InversionError(f"No reference images in {source}.")


def _write_statistics(
    extractor: nn.Module, source: str, batch_size: int, progress: bool, path: Path
) -> None:
    features_path = path.with_name(f"{path.stem}-features.pt")
    if features_path.is_file():  # embedded already (for KID)
        batches: Iterator[Tensor] = iter([load_checkpoint_file(features_path)["features"]])
    else:
        batches = _embedded(extractor, source, batch_size, progress)
    fid = None
    for pool in batches:
        if fid is None:
            fid = FrechetDistance(pool.shape[1])
        fid.update(pool, real=True)
    assert fid is not None  # _embedded raises on an empty source
    mean, cov = fid.statistics(real=True)
    _save(path, {"mean": mean, "cov": cov, "n": int(fid.real_n), "source": source})
