"""Images per second of our FID + IS path against torch-fidelity's, in one run.

Both score the same folder of PNGs against the same reference folder, with the same
InceptionV3 weights file, batch size and device, from a cold start (no cached
statistics on either side); each side is timed ``--repeats`` times and the best time
counts. Without ``--inception-weights`` a randomly initialised weights file is made
(the timing does not depend on the weight values).

    python -m benchmarks.fidelity_throughput --images 256 --device cpu
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.inception_weights import make_random_inception_weights
from benchmarks.peers import ours_fidelity


def write_folder(folder: Path, count: int, size: int, seed: int) -> None:
    """Write ``count`` random RGB PNGs of ``size`` x ``size``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")


def time_ours(fake: Path, real: Path, weights: str, batch_size: int, device: str) -> float:
    """Seconds for IS + FID of ``fake`` against ``real`` through evaluate.py's path (cold)."""
    start = time.perf_counter()
    ours_fidelity(fake, real, weights, batch_size, device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_torch_fidelity(
    fake: Path, real: Path, weights: str, batch_size: int, device: str
) -> float:
    """Seconds for torch-fidelity's ``calculate_metrics`` on the same inputs."""
    import torch_fidelity

    start = time.perf_counter()
    torch_fidelity.calculate_metrics(
        input1=str(fake),
        input2=str(real),
        fid=True,
        isc=True,
        cache=False,
        verbose=False,
        cuda=device.startswith("cuda"),
        feature_extractor_weights_path=weights,
        batch_size=batch_size,
        samples_shuffle=False,
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    """Run both sides and print images/second and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="images per folder")
    parser.add_argument("--size", type=int, default=64, help="side of the PNGs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--inception-weights", help="torch-fidelity InceptionV3 weights file")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp())
    fake, real = root / "fake", root / "real"
    write_folder(fake, args.images, args.size, 0)
    write_folder(real, args.images, args.size, 1)
    weights = args.inception_weights
    if weights is None:
        weights = str(make_random_inception_weights(root / "inception.pth"))
    total = 2 * args.images  # both sides embed the produced and the reference folder
    ours = min(
        time_ours(fake, real, weights, args.batch_size, args.device) for _ in range(args.repeats)
    )
    theirs = min(
        time_torch_fidelity(fake, real, weights, args.batch_size, args.device)
        for _ in range(args.repeats)
    )
    print(
        f"device {args.device}, {args.images} + {args.images} images of {args.size}px, "
        f"batch {args.batch_size}, torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}"
    )
    print("| path | seconds | images/s |")
    print("|---|---:|---:|")
    print(f"| ours (evaluate.py folder) | {ours:.1f} | {total / ours:.1f} |")
    print(f"| torch-fidelity calculate_metrics | {theirs:.1f} | {total / theirs:.1f} |")
    print(f"ratio ours / torch-fidelity throughput: {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
