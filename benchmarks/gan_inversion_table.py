"""The GAN-inversion table of the embedded digits benchmark (README), and the repair grid.

The generator is ``digits:dcgan`` (a DCGAN trained on the digits training split by the
framework, cached on first use). Encoders are trained only on generated pairs
(z, G(z)) with different loss weights, then scored on 512 held-out codes: latent recovery
(MSE and cosine between E(G(z)) and z), reconstruction (PSNR/SSIM of G(E(G(z))) against
G(z)), repair (a 12 x 12 square of noise pasted on G(z), then re-generated from its
recovered code: PSNR against the clean G(z), before and after), and the projection of the
360 real test digits, which no encoder saw (PSNR of G(E(x)) against x). Encoders are
cached by recipe hash.

    python -m benchmarks.gan_inversion_table           # prints the table, writes the grid
    python -m benchmarks.update_readme gan_inversion   # writes it into README.md
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from inversion.data.digits import load_digits_split
from inversion.gan_inversion import (
    DIGITS_GAN,
    ConvEncoder,
    EncoderWeights,
    build_generator,
    inversion_metrics,
    train_encoder,
)
from inversion.metrics.reconstruction import psnr
from inversion.paths import cache_dir, cached_torch_file

GRID = Path(__file__).resolve().parents[1] / "docs" / "layerwise" / "gan_repair.png"
PATCH = 12
HELD_OUT = 512


@dataclasses.dataclass(frozen=True)
class EncoderRecipe:
    """One trained encoder (every field enters the cache key)."""

    latent: float = 1.0
    cycle: float = 100.0
    steps: int = 600
    batch: int = 64
    lr: float = 1e-3
    width: int = 32
    seed: int = 0

    def key(self) -> str:
        """Short hash of the recipe and the generator's."""
        payload = {"gan": DIGITS_GAN.key(), **dataclasses.asdict(self)}
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def trained_encoder(recipe: EncoderRecipe) -> tuple[ConvEncoder, float]:
    """Train (or load from the cache) an encoder of digits:dcgan on generated pairs."""
    generator = build_generator("digits:dcgan")

    def train() -> dict:
        start = time.perf_counter()
        encoder = train_encoder(
            generator,
            EncoderWeights(recipe.latent, recipe.cycle),
            steps=recipe.steps,
            batch=recipe.batch,
            lr=recipe.lr,
            width=recipe.width,
            seed=recipe.seed,
        )
        return {"state_dict": encoder.state_dict(), "seconds": time.perf_counter() - start}

    result = cached_torch_file(cache_dir() / "gan" / f"encoder-{recipe.key()}.pt", train)
    encoder = ConvEncoder(generator.latent_dim, width=recipe.width)
    encoder.load_state_dict(result["state_dict"])
    return encoder.eval(), result["seconds"]


def run(recipe: EncoderRecipe = EncoderRecipe()) -> dict[str, Any]:
    """Scores of one encoder on held-out codes and on the real test digits, and images.

    Floats by metric name, and ``images``: the first 8 of each row of the grid.
    """
    generator = build_generator("digits:dcgan")
    encoder, seconds = trained_encoder(recipe)
    z = torch.randn(HELD_OUT, generator.latent_dim, generator=torch.Generator().manual_seed(1))
    metrics, images = inversion_metrics(
        encoder, generator, z, PATCH, torch.Generator().manual_seed(2)
    )
    real, _ = load_digits_split("test")
    with torch.no_grad():
        projected = generator(encoder(real))
    return {
        **{name: float(values.mean()) for name, values in metrics.items()},
        "psnr_real": float(psnr(projected, real).mean()),
        "seconds": seconds,
        "images": {
            **{k: v[:8] for k, v in images.items()},
            "real": real[:8],
            "projected": projected[:8],
        },
    }


def write_grid(results: dict, path: Path = GRID) -> Path:
    """Rows: generated | corrupted | repaired | reconstructed; real | projected (8 each)."""
    from torchvision.utils import make_grid, save_image

    images = results["images"]
    rows = ["original", "corrupted", "repaired", "reconstructed", "real", "projected"]
    grid = make_grid(torch.cat([images[r] for r in rows]), nrow=8, padding=2, pad_value=1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.nn.functional.interpolate(grid[None], scale_factor=2)[0], path)
    return path


ROWS = {
    "latent + 100 × cycle (default)": EncoderRecipe(),
    "latent + 10 × cycle": EncoderRecipe(cycle=10.0),
    "latent + 1 × cycle": EncoderRecipe(cycle=1.0),
    "latent only": EncoderRecipe(cycle=0.0),
    "cycle only": EncoderRecipe(latent=0.0, cycle=1.0),
}


def table() -> str:
    """One row per encoder loss; writes the repair grid of the default encoder."""
    lines = [
        "| encoder loss | latent MSE | latent cosine | PSNR G(E(G(z))) | SSIM | PSNR damaged "
        "| PSNR repaired | PSNR real digits G(E(x)) | train (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, recipe in ROWS.items():
        r = run(recipe)
        if recipe == EncoderRecipe():
            write_grid(r)
        lines.append(
            f"| {name} | {r['latent_mse']:.3f} | {r['latent_cosine']:.3f} | {r['psnr']:.1f} | "
            f"{r['ssim']:.3f} | {r['psnr_corrupted']:.1f} | {r['psnr_repaired']:.1f} | "
            f"{r['psnr_real']:.1f} | {r['seconds']:.0f} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines)


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", torch.get_num_threads())))
    print(table())
