"""The GAN-inversion table of the embedded digits benchmark, its claims, and the repair grid.

The generator is ``digits:dcgan`` (a DCGAN trained on the digits training split by the
framework, cached on first use): one fixed trained generator for every cell. Encoders are
trained only on generated pairs (z, G(z)) with different loss weights, then scored on 512
held-out codes: latent recovery (MSE and cosine between E(G(z)) and z), reconstruction
(PSNR/SSIM of G(E(G(z))) against G(z)), repair (a 12 x 12 square of noise pasted on G(z),
then re-generated from its recovered code: PSNR against the clean G(z), before and after),
and the projection of the 360 real test digits, which no encoder saw (PSNR of G(E(x))
against x).

Every cell is a mean over the seeds of :data:`benchmarks.intervals.SEEDS` with its 95%
interval; the seed is the encoder's own randomness (its initialisation and the codes it
trains on). The held-out codes and the damage are drawn from seeds no encoder trains
with, the same for every cell, so differences between rows are paired over seeds. A claim
"A beats B" is made only where the interval of the paired difference excludes zero
(:func:`claims`). Trained encoders are cached per recipe and seed (``<cache>/tables``,
:func:`benchmarks.cells.cached_tensors`), keyed by the generator's recipe and weights, and
rescored on each run (about 10 s for the table). Each encoder trains on one thread: on 2
shared cores two threads were several times slower than one, and one thread keeps the
result independent of the machine's thread count. A cold rebuild takes about 4 minutes.

    python -m benchmarks.gan_inversion_table            # prints the table and its claims
    python -m benchmarks.update_readme gan_inversion    # writes them into docs/layerwise.md
    python -m benchmarks.gan_inversion_table --figures  # the repair grid, from seed 0
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from benchmarks.cells import cached_tensors
from benchmarks.intervals import SEEDS, SeedRuns, paired_difference, verdict
from benchmarks.table_cli import run_table_command
from inversion.data.digits import load_digits_split
from inversion.gan_inversion import (
    DIGITS_GAN,
    ConvEncoder,
    DCGANGenerator,
    EncoderWeights,
    build_generator,
    inversion_metrics,
    train_encoder,
)
from inversion.metrics.reconstruction import psnr

TABLE = "gan_inversion"
GENERATOR = "digits:dcgan"
SOURCES = ["inversion/gan_inversion"]
GRID = Path(__file__).resolve().parents[1] / "docs" / "layerwise" / "gan_repair.png"
PATCH = 12
HELD_OUT = 512
HELD_OUT_SEED = 1000  # the held-out codes: a seed no encoder trains with (SEEDS are 0, 1, 2)
DAMAGE_SEED = 1001  # where the noise squares go, and their noise


@dataclasses.dataclass(frozen=True)
class EncoderRecipe:
    """One encoder's training (every field enters the cell's key, with the seed)."""

    latent: float = 1.0
    cycle: float = 100.0
    steps: int = 600
    batch: int = 64
    lr: float = 1e-3
    width: int = 32


DEFAULT = "latent + 100 × cycle"
ROWS = {
    DEFAULT: EncoderRecipe(),
    "latent + 10 × cycle": EncoderRecipe(cycle=10.0),
    "latent + 1 × cycle": EncoderRecipe(cycle=1.0),
    "latent only": EncoderRecipe(cycle=0.0),
    "cycle only": EncoderRecipe(latent=0.0, cycle=1.0),
}
# metric, title, decimals, higher is better
METRICS = [
    ("latent_mse", "latent MSE", 3, False),
    ("latent_cosine", "latent cosine", 3, True),
    ("psnr", "PSNR G(E(G(z)))", 1, True),
    ("ssim", "SSIM", 3, True),
    ("psnr_corrupted", "PSNR damaged", 1, True),
    ("psnr_repaired", "PSNR repaired", 1, True),
    ("psnr_real", "PSNR real digits G(E(x))", 1, True),
]
TITLES = {name: title for name, title, _, _ in METRICS}
DIGITS = {name: digits for name, _, digits, _ in METRICS}
HIGHER = {name: higher for name, _, _, higher in METRICS}
# (metric, A, B): the comparisons the page's prose rests on, each paired over the seeds
COMPARISONS = [
    ("latent_mse", "latent only", DEFAULT),
    ("latent_mse", "latent only", "latent + 10 × cycle"),
    ("latent_mse", "latent only", "latent + 1 × cycle"),
    ("latent_mse", DEFAULT, "cycle only"),
    ("latent_mse", "latent only", "cycle only"),
    ("psnr_repaired", DEFAULT, "latent only"),
    ("psnr_repaired", "latent + 10 × cycle", "latent only"),
    ("psnr_repaired", "latent + 1 × cycle", "latent only"),
    ("psnr_repaired", "cycle only", DEFAULT),
    ("psnr_real", DEFAULT, "latent only"),
    ("psnr_real", "cycle only", DEFAULT),
]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.cache
def generator() -> DCGANGenerator:
    """The frozen ``digits:dcgan`` (trained on first use, then loaded from the cache)."""
    return build_generator(GENERATOR)


def weights_digest(module: torch.nn.Module) -> str:
    """Short hash of a module's weights.

    The DCGAN's training is not bit-reproducible across CPUs, so cells are keyed by the
    generator they trained against, not only by its recipe.
    """
    digest = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def cell_fields(recipe: EncoderRecipe, seed: int) -> dict:
    """Everything one cached encoder is keyed by."""
    return {
        **dataclasses.asdict(recipe),
        "seed": seed,
        "generator": GENERATOR,
        "generator_recipe": DIGITS_GAN.key(),
        "generator_weights": weights_digest(generator()),
    }


def train(recipe: EncoderRecipe, seed: int) -> dict[str, torch.Tensor]:
    """Train one encoder (one thread); its weights (``encoder.*``) and its seconds."""
    start = time.perf_counter()
    with one_thread():
        encoder = train_encoder(
            generator(),
            EncoderWeights(recipe.latent, recipe.cycle),
            steps=recipe.steps,
            batch=recipe.batch,
            lr=recipe.lr,
            width=recipe.width,
            seed=seed,
        )
    seconds = time.perf_counter() - start
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    return {**state, "seconds": torch.tensor(seconds)}


def trained_encoder(recipe: EncoderRecipe, seed: int) -> tuple[ConvEncoder, float]:
    """The encoder of one cell and seed, trained once and kept in the table cache.

    Returns:
        The encoder in eval mode, and the seconds its training took.
    """
    made = cached_tensors(TABLE, cell_fields(recipe, seed), lambda: train(recipe, seed), SOURCES)
    g = generator()
    encoder = ConvEncoder(g.latent_dim, g.channels, recipe.width, g.image_size)
    encoder.load_state_dict(
        {k.removeprefix("encoder."): v for k, v in made.items() if k.startswith("encoder.")}
    )
    return encoder.eval(), float(made["seconds"])


def score(encoder: ConvEncoder) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """An encoder's metrics on the held-out codes and the real test digits, and images.

    Returns:
        ``(metrics, images)``: means by metric name, and the first 8 images of each row of
        the repair grid (:data:`ROW_TITLES`).
    """
    g = generator()
    z = torch.randn(HELD_OUT, g.latent_dim, generator=torch.Generator().manual_seed(HELD_OUT_SEED))
    damage = torch.Generator().manual_seed(DAMAGE_SEED)
    metrics, images = inversion_metrics(encoder, g, z, PATCH, damage)
    real, _ = load_digits_split("test")
    with torch.no_grad():
        projected = g(encoder(real))
    means = {name: float(values.mean()) for name, values in metrics.items()}
    means["psnr_real"] = float(psnr(projected, real).mean())
    shown = {k: v[:8] for k, v in images.items()}
    return means, {**shown, "real": real[:8], "projected": projected[:8]}


def run(recipe: EncoderRecipe = EncoderRecipe(), seed: int = SEEDS[0]) -> dict[str, float]:
    """One cell at one seed: the (cached) encoder's metrics and its training seconds."""
    encoder, seconds = trained_encoder(recipe, seed)
    return {**score(encoder)[0], "seconds": seconds}


@dataclasses.dataclass
class Cell(SeedRuns):
    """One row: an encoder loss over the seeds."""

    label: str
    runs: list[dict[str, float]]

    def row(self) -> str:
        """One Markdown row (training time: the median over seeds)."""
        label = f"{self.label} (default)" if self.label == DEFAULT else self.label
        cells = [self.estimate(name).format(digits) for name, _, digits, _ in METRICS]
        seconds = statistics.median(self.values("seconds"))
        return f"| {label} | " + " | ".join(cells) + f" | {seconds:.0f} |"


HEADER = (
    "| encoder loss | "
    + " | ".join(title for _, title, _, _ in METRICS)
    + " | train (s), median |\n|---|"
    + "---:|" * (len(METRICS) + 1)
)


def cells() -> list[Cell]:
    """Every row of the table, each over the seeds."""
    rows = []
    for label, recipe in ROWS.items():
        rows.append(Cell(label, [run(recipe, seed) for seed in SEEDS]))
        print(rows[-1].row(), flush=True)
    return rows


def claims(rows: list[Cell]) -> list[str]:
    """What the paired intervals over seeds allow: repair per row, then the comparisons."""
    by_label = {c.label: c for c in rows}
    lines = []
    for c in rows:
        gain = paired_difference(c.values("psnr_repaired"), c.values("psnr_corrupted"))
        if not gain.excludes_zero():
            words = "no difference found between the repaired and the damaged images"
        elif gain.mean > 0:
            words = "re-generating repairs damaged images"
        else:
            words = "re-generating makes damaged images worse"
        lines.append(f"- {c.label}: {words} (PSNR repaired minus damaged: {gain.format(1)} dB)")
    for metric, a, b in COMPARISONS:
        diff = paired_difference(by_label[a].values(metric), by_label[b].values(metric))
        lines.append(
            f"- {TITLES[metric]}: {verdict(a, b, diff, HIGHER[metric])} "
            f"({a} minus {b}: {diff.format(DIGITS[metric])})"
        )
    return lines


def table() -> str:
    """The table and its claims, as docs/layerwise.md shows them."""
    rows = cells()
    return (
        "\n".join([HEADER, *(c.row() for c in rows)])
        + f"\n\nWhat the intervals allow (paired over the {len(SEEDS)} seeds):\n\n"
        + "\n".join(claims(rows))
    )


ROW_TITLES = {
    "original": "generated G(z)",
    "corrupted": "damaged",
    "repaired": "repaired\nG(E(damaged))",
    "reconstructed": "reconstructed\nG(E(G(z)))",
    "real": "real test digits x",
    "projected": "projected G(E(x))",
}


def write_figures(path: Path = GRID) -> list[Path]:
    """The repair grid of the default encoder (seed 0, from the cache): 8 images per row."""
    from benchmarks.figures import labelled_grid

    encoder, _ = trained_encoder(ROWS[DEFAULT], SEEDS[0])
    images = score(encoder)[1]
    grid = torch.stack([images[name] for name in ROW_TITLES])
    labelled_grid(
        grid,
        list(ROW_TITLES.values()),
        [""] * grid.shape[1],
        path,
        title=f"digits:dcgan inverted by the default encoder ({DEFAULT}, seed 0)",
    )
    return [path]


if __name__ == "__main__":
    run_table_command("gan_inversion_table", table, write_figures)
