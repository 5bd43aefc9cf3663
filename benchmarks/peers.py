"""The same work done by this project and by the tools users would pick instead, in one run.

Each row runs one piece of work twice, once here and once with a peer library, on the
same model, images and settings, and reports both results, how far they agree and the
time ratio ours / theirs (interleaved rounds of ``benchmarks/timing.py``: the median and
min-max over rounds):

- **PGD** (``inversion.attacks.PGD``) against torchattacks' ``PGD``/``PGDL2`` and
  Foolbox's ``LinfPGD``/``L2PGD``: ``digits:cnn`` on the digits test split (360 images,
  one batch), L-inf eps 8/255 and L2 eps 0.5, 10 steps of 2.5 eps / 10, no random start
  and the last iterate (``use_best=False``; our default keeps each example's best
  iterate, which no peer does). Robust accuracy of each, the fraction of images on which
  both attacks succeed or fail alike, and the largest pixel difference of the two
  adversarial batches.
- **IS / FID / KID** (``evaluate.py folder``) against torch-fidelity's
  ``calculate_metrics`` with its defaults (IS: 10 shuffled splits, seed 2020; KID: 100
  subsets, of the size ours clamps to), on the same PNG folders: the digits test split
  written class by class (360) against the validation split (180), the same InceptionV3
  weights file, cold caches on both sides. Without ``--inception-weights`` a randomly
  initialised file is made (``benchmarks/inception_weights.py``): the agreement and the
  times hold, the values are not the papers' scale.
- **A universal perturbation**: our dominant pattern (``find_pattern``: batches of 32,
  Adam 1e-2) against ART's ``UniversalPerturbation`` (inner attack FGSM with step eps;
  ``--uap-attacker deepfool`` for ART's default, which took over 10 minutes for 30
  images in one pass on 2 cores; it stops early at its default fooling rate 0.8), both
  L-inf 16/255, one pass over the digits train split with labels unused (ART: the
  model's predictions), ``x + p`` clipped to [0, 1]. Fooling rate of each pattern on the
  test split and the fraction of test images both fool or both spare. Different
  algorithms: the time ratio is what each costs for its pattern, not a like-for-like
  speed.

A peer that is not installed gives its row "not installed" instead of an error::

    pip install -e ".[peers]"            # Foolbox and ART (adversarial-robustness-toolbox)
    pip install --no-deps torchattacks   # it pins an old requests; its real needs are ours
    python -m benchmarks.peers           # prints the Markdown table (minutes on 2 cores)
    python -m benchmarks.update_readme peers   # writes it into README.md
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import io
import os
import random
import statistics
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from benchmarks.timing import Loop, Timings, interleave, pin_threads, sync
from inversion.attacks import PGD
from inversion.errors import InversionError, exit_on_user_error
from inversion.models import ImageClassifier

Norm = Literal["linf", "l2"]
PGD_SETTINGS: tuple[tuple[Norm, float, str], ...] = (
    ("linf", 8 / 255, "8/255"),
    ("l2", 0.5, "0.5"),
)
PGD_STEPS = 10
UAP_EPS = 16  # / 255, the dominant-patterns table's main eps
UAP_PASSES = 1
UAP_BATCH = 32
MODELS = ("digits:cnn", "digits:resnet", "digits:vit", "digits:mlp")
HEADER = (
    "| work | peer | ours | theirs | agreement | ours (s) | theirs (s) "
    "| time ours / theirs: median (min-max) |\n|---|---|---:|---:|---|---:|---:|---:|"
)


@dataclass
class Row:
    """One line of the table: a piece of work done by us and by one peer."""

    work: str
    peer: str
    ours: str = "-"
    theirs: str = "-"
    agreement: str = "-"
    timing: tuple[float, float, str] | None = None  # ours s, theirs s, ratio cell
    values: tuple[float, ...] = ()  # the numbers behind the cells (ours, theirs, agreement)

    def markdown(self) -> str:
        """The row as a Markdown table line."""
        ours_s, theirs_s, ratio = (
            (f"{self.timing[0]:.2f}", f"{self.timing[1]:.2f}", self.timing[2])
            if self.timing
            else ("-", "-", "-")
        )
        cells = [self.work, self.peer, self.ours, self.theirs, self.agreement]
        return "| " + " | ".join(cells + [ours_s, theirs_s, ratio]) + " |"


def installed(distribution: str, module: str) -> str | None:
    """``"name version"`` of a peer that imports, or None when it is not installed."""
    try:
        __import__(module)
    except ImportError:
        return None
    return f"{distribution} {importlib.metadata.version(distribution)}"


def missing(work: str, peer: str, install: str) -> Row:
    """The row of a peer that is not installed."""
    return Row(work, peer, agreement=f"not installed (`{install}`)")


# --- timing -------------------------------------------------------------------------------
def call_loop(call: Callable[[], Any], results: dict[str, Any], key: str, device: str) -> Loop:
    """A timing loop for :func:`interleave`: ``calls`` calls of ``call``, seconds per call.

    The latest result is kept in ``results[key]``; zero calls (no warm-up) do nothing.
    """

    def loop(calls: int) -> float:
        if calls == 0:
            return 0.0
        sync(device)
        start = perf_counter()
        for _ in range(calls):
            results[key] = call()
        sync(device)
        return (perf_counter() - start) / calls

    return loop


def time_together(
    calls: dict[str, Callable[[], Any]], device: str, repeats: int, warmup: int
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Run every call in interleaved rounds; the latest results and the seconds per round."""
    results: dict[str, Any] = {}
    loops = {name: call_loop(call, results, name, device) for name, call in calls.items()}
    timings = interleave(loops, steps=1, repeats=repeats, warmup=warmup)
    return results, timings.seconds


def ratio_to(seconds: dict[str, list[float]], peer: str) -> tuple[float, float, str]:
    """Median seconds of ours and of ``peer``, and ours / peer (round by round) as a cell."""
    pair = Timings({peer: seconds[peer], "ours": seconds["ours"]})  # the peer is the divisor
    return statistics.median(seconds["ours"]), statistics.median(seconds[peer]), pair.cell("ours")


# --- PGD ----------------------------------------------------------------------------------
def peer_pgd(
    peer: str, model: ImageClassifier, norm: Norm, eps: float, step_size: float, steps: int
) -> Callable[[Tensor, Tensor], Tensor]:
    """The peer's PGD at our settings (no random start), as ``attack(images, labels)``."""
    if peer == "torchattacks":
        import torchattacks

        kind = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
        attack = kind(model, eps=eps, alpha=step_size, steps=steps, random_start=False)
        return lambda images, labels: attack(images, labels)
    import foolbox

    device = next(model.parameters()).device
    fmodel = foolbox.PyTorchModel(model, bounds=(0.0, 1.0), device=device)
    fb_kind = foolbox.attacks.LinfPGD if norm == "linf" else foolbox.attacks.L2PGD
    fb_attack = fb_kind(abs_stepsize=step_size, steps=steps, random_start=False)

    def run(images: Tensor, labels: Tensor) -> Tensor:
        _, clipped, _ = fb_attack(fmodel, images, labels, epsilons=eps)
        return clipped

    return run


@torch.no_grad()
def correct(model: ImageClassifier, images: Tensor, labels: Tensor) -> Tensor:
    """Per image: does the model still classify it right (bool, N)."""
    return model(images).argmax(dim=1) == labels


PGD_PEERS = {  # name: (distribution, module, how to install)
    "torchattacks": ("torchattacks", "torchattacks", "pip install --no-deps torchattacks"),
    "foolbox": ("foolbox", "foolbox", 'pip install -e ".[peers]"'),
}


def pgd_rows(
    model: ImageClassifier,
    images: Tensor,
    labels: Tensor,
    device: str,
    repeats: int,
    steps: int = PGD_STEPS,
) -> list[Row]:
    """Robust accuracy, agreement and time of our PGD and each peer's, L-inf and L2.

    Our attack and every installed peer's run in the same interleaved rounds, after one
    untimed warm-up call each (whose adversarial images are the ones compared: no random
    start, so every call gives the same images).
    """
    rows = []
    for norm, eps, eps_text in PGD_SETTINGS:
        step_size = 2.5 * eps / steps
        work = f"PGD {'L-inf' if norm == 'linf' else 'L2'} {eps_text}, {steps} steps: robust acc"
        ours_attack = PGD(eps, step_size, steps, norm, random_start=False, use_best=False)
        calls: dict[str, Callable[[], Any]] = {
            "ours": functools.partial(ours_attack, model, images, labels)
        }
        names = {}
        for peer, (distribution, module, install) in PGD_PEERS.items():
            name = installed(distribution, module)
            if name is None:
                rows.append(missing(work, peer, install))
                continue
            names[peer] = name
            attack = peer_pgd(peer, model, norm, eps, step_size, steps)
            calls[peer] = functools.partial(attack, images, labels)
        if not names:
            continue
        results, seconds = time_together(calls, device, repeats, warmup=1)
        ours_ok = correct(model, results["ours"], labels)
        ours_acc = ours_ok.double().mean().item()
        for peer, name in names.items():
            theirs_ok = correct(model, results[peer], labels)
            theirs_acc = theirs_ok.double().mean().item()
            agree = (ours_ok == theirs_ok).double().mean().item()
            diff = (results["ours"] - results[peer]).abs().max().item()
            rows.append(
                Row(
                    work,
                    name,
                    f"{ours_acc:.3f}",
                    f"{theirs_acc:.3f}",
                    f"{agree:.3f} alike; max pixel diff {diff:.1g}",
                    ratio_to(seconds, peer),
                    (ours_acc, theirs_acc, agree),
                )
            )
    return rows


# --- IS / FID / KID -----------------------------------------------------------------------
def write_digits_folder(folder: Path, images: Tensor, labels: Tensor) -> Path:
    """Write images (N x 1 x H x W in [0, 1]) as RGB PNGs named class by class."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = (images * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
    order = torch.argsort(labels, stable=True)
    for position, index in enumerate(order.tolist()):
        array = pixels[index].permute(1, 2, 0).numpy()
        Image.fromarray(array).save(folder / f"{position:05d}_class{int(labels[index])}.png")
    return folder


@contextlib.contextmanager
def cold_cache() -> Iterator[None]:
    """``$INVERSION_CACHE`` set to a fresh temporary folder (no cached reference statistics)."""
    before = os.environ.get("INVERSION_CACHE")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["INVERSION_CACHE"] = folder
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("INVERSION_CACHE", None)
            else:
                os.environ["INVERSION_CACHE"] = before


def ours_fidelity(fake: Path, real: Path, weights: str, batch_size: int, device: str) -> dict:
    """IS, FID and KID of ``fake`` against ``real`` through ``evaluate.py folder``."""
    from model_inversion import evaluate

    with cold_cache(), tempfile.TemporaryDirectory() as out:
        # evaluate.py prints its table and progress bars
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return evaluate.main(
                [
                    "folder",
                    str(fake),
                    "--reference",
                    str(real),
                    "--inception-weights",
                    weights,
                    "--batch-size",
                    str(batch_size),
                    "--device",
                    device,
                    "--out",
                    out,
                ]
            )


def torch_fidelity_metrics(
    fake: Path, real: Path, weights: str, batch_size: int, device: str, kid_subset_size: int
) -> dict:
    """torch-fidelity's IS, FID and KID with its defaults (KID subsets of the given size)."""
    import torch_fidelity

    return torch_fidelity.calculate_metrics(
        input1=str(fake),
        input2=str(real),
        isc=True,
        fid=True,
        kid=True,
        kid_subset_size=kid_subset_size,
        cache=False,
        verbose=False,
        cuda=device.startswith("cuda"),
        feature_extractor_weights_path=weights,
        batch_size=batch_size,
    )


def fidelity_rows(
    fake: Path,
    real: Path,
    weights: str,
    batch_size: int,
    device: str,
    repeats: int,
) -> list[Row]:
    """IS, FID and KID from ``evaluate.py folder`` and torch-fidelity (one timed call each)."""
    name = installed("torch-fidelity", "torch_fidelity")
    subset = min(len(list(fake.iterdir())), len(list(real.iterdir())))
    works = [
        "IS, 10 shuffled splits (time: one call for IS + FID + KID)",
        "FID",
        f"KID, 100 subsets of {subset}",
    ]
    if name is None:  # a dependency of the project, but say so rather than fail
        return [missing(work, "torch-fidelity", "pip install torch-fidelity") for work in works]
    # imported before the clock runs
    import torch_fidelity  # noqa: F401

    from model_inversion import evaluate  # noqa: F401

    results, seconds = time_together(
        {
            "torch-fidelity": lambda: torch_fidelity_metrics(
                fake, real, weights, batch_size, device, subset
            ),
            "ours": lambda: ours_fidelity(fake, real, weights, batch_size, device),
        },
        device,
        repeats,
        warmup=0,
    )
    ours, theirs = results["ours"], results["torch-fidelity"]
    pairs = [
        (ours["is"], theirs["inception_score_mean"]),
        (ours["fid"], theirs["frechet_inception_distance"]),
        (ours["kid"], theirs["kernel_inception_distance_mean"]),
    ]
    rows = []
    for i, (work, (mine, peer)) in enumerate(zip(works, pairs, strict=True)):
        diff = abs(mine - peer)
        relative = diff / max(abs(peer), 1e-30)
        rows.append(
            Row(
                work,
                name,
                f"{mine:.5g}",
                f"{peer:.5g}",
                f"abs diff {diff:.1e}, rel {relative:.1e}",
                ratio_to(seconds, "torch-fidelity") if i == 0 else None,
                (mine, peer, relative),
            )
        )
    return rows


# --- universal perturbation ---------------------------------------------------------------
Attacker = Literal["fgsm", "deepfool"]
ATTACKERS = ("fgsm", "deepfool")


def art_pattern(
    model: ImageClassifier,
    proxy: Tensor,
    eps: float,
    passes: int,
    device: str,
    attacker: Attacker = "fgsm",
    seed: int = 0,
) -> tuple[Tensor, float]:
    """ART's UniversalPerturbation on ``proxy`` (labels: the model's own predictions).

    Returns:
        The pattern (1 x C x H x W) and the fooling rate ART reports on ``proxy``.
    """
    from art.attacks.evasion import UniversalPerturbation
    from art.estimators.classification import PyTorchClassifier

    with torch.no_grad():
        num_classes = int(model(proxy[:1].to(device)).shape[1])
    classifier = PyTorchClassifier(
        model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(proxy.shape[1:]),
        nb_classes=num_classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if device.startswith("cuda") else "cpu",
    )
    params: dict[str, Any] = {"eps": eps} if attacker == "fgsm" else {"verbose": False}
    attack = UniversalPerturbation(
        classifier,
        attacker=attacker,
        attacker_params=params,
        max_iter=passes,
        eps=eps,
        norm=np.inf,
        verbose=False,
    )
    random.seed(seed)  # ART visits the images in a random.sample order
    np.random.seed(seed)
    attack.generate(proxy.cpu().numpy())
    if attack.noise is None or attack.fooling_rate is None:
        raise RuntimeError("ART's UniversalPerturbation returned no perturbation.")
    return torch.from_numpy(attack.noise).float(), float(attack.fooling_rate)


@torch.no_grad()
def fooled(model: ImageClassifier, delta: Tensor, images: Tensor) -> Tensor:
    """Per image: does ``x + delta`` (clipped to [0, 1]) change the model's prediction."""
    delta = delta.to(images.device, images.dtype)
    clean = model(images).argmax(dim=1)
    return model((images + delta).clamp(0, 1)).argmax(dim=1) != clean


def uap_rows(
    model: ImageClassifier,
    proxy: Tensor,
    images: Tensor,
    device: str,
    passes: int = UAP_PASSES,
    attacker: Attacker = "fgsm",
) -> list[Row]:
    """Fooling rate and time of our dominant pattern and ART's universal perturbation."""
    from torch.utils.data import DataLoader, TensorDataset

    from inversion.dominant_patterns import PatternObjective, find_pattern

    eps = UAP_EPS / 255
    work = (
        f"universal perturbation L-inf {UAP_EPS}/255, {passes} pass(es) over "
        f"{len(proxy)} train digits: test fooling rate (ours: dominant pattern)"
    )
    peer = f"ART UniversalPerturbation ({attacker})"
    name = installed("adversarial-robustness-toolbox", "art")
    if name is None:
        return [missing(work, peer, 'pip install -e ".[peers]"')]
    proxy = proxy.to(device)
    batches = DataLoader(TensorDataset(proxy), batch_size=UAP_BATCH)  # no labels at all

    def ours() -> Tensor:
        pattern = find_pattern(model, batches, PatternObjective("dominant"), eps, epochs=passes)
        return pattern.delta().detach()

    results, seconds = time_together(
        {"ART": lambda: art_pattern(model, proxy, eps, passes, device, attacker), "ours": ours},
        device,
        repeats=1,
        warmup=0,
    )
    images = images.to(device)
    mine, theirs = fooled(model, results["ours"], images), fooled(model, results["ART"][0], images)
    agree = (mine == theirs).double().mean().item()
    mine_rate, theirs_rate = mine.double().mean().item(), theirs.double().mean().item()
    return [
        Row(
            work,
            f"{name.replace('adversarial-robustness-toolbox', 'ART')} UAP ({attacker})",
            f"{mine_rate:.3f}",
            f"{theirs_rate:.3f}",
            f"{agree:.3f} alike (different algorithms)",
            ratio_to(seconds, "ART"),
            (mine_rate, theirs_rate, agree),
        )
    ]


# --- the table ----------------------------------------------------------------------------
PARTS = ("pgd", "fidelity", "uap")


@dataclass(frozen=True)
class Settings:
    """What the benchmark runs (the command line's options; see :func:`main`)."""

    model: str = "digits:cnn"
    device: str = "cpu"
    parts: tuple[str, ...] = PARTS
    repeats: int = 3
    long_repeats: int = 1
    threads: int = 2
    inception_weights: str | None = None
    batch_size: int = 64
    uap_passes: int = UAP_PASSES
    uap_attacker: Attacker = "fgsm"
    uap_proxy: int | None = None  # None: the whole train split

    def check(self) -> None:
        """Raise a clear error for settings the benchmark cannot run."""
        if self.model not in MODELS:
            raise InversionError(f"peers runs on a digits zoo model, one of {MODELS}.")
        unknown = sorted(set(self.parts) - set(PARTS))
        if unknown:
            raise InversionError(f"Unknown parts {unknown}; choose from {PARTS}.")
        if self.uap_attacker not in ATTACKERS:
            raise InversionError(f"Unknown ART attacker {self.uap_attacker!r}; one of {ATTACKERS}.")
        if min(self.repeats, self.long_repeats, self.threads, self.uap_passes) < 1:
            raise InversionError("repeats, long repeats, threads and UAP passes must be >= 1.")
        if self.uap_proxy is not None and self.uap_proxy < 1:
            raise InversionError("The UAP proxy needs at least one image.")


def table(settings: Settings | None = None) -> str:
    """Run the comparisons and return the Markdown table (with its header line)."""
    from benchmarks.inception_weights import make_random_inception_weights
    from inversion import build_classifier
    from inversion.data.digits import load_digits_split

    settings = settings or Settings()
    settings.check()
    threads = pin_threads(settings.threads)
    device = settings.device
    model = build_classifier(settings.model).freeze().to(device)
    test_images, test_labels = load_digits_split("test")
    rows: list[Row] = []
    if "pgd" in settings.parts:
        images, labels = test_images.to(device), test_labels.to(device)
        rows += pgd_rows(model, images, labels, device, settings.repeats)
    if "fidelity" in settings.parts:
        with tempfile.TemporaryDirectory() as root_name:
            root = Path(root_name)
            fake = write_digits_folder(root / "test", test_images, test_labels)
            real = write_digits_folder(root / "val", *load_digits_split("val"))
            weights = settings.inception_weights or str(
                make_random_inception_weights(root / "inception.pth")
            )
            rows += fidelity_rows(
                fake, real, weights, settings.batch_size, device, settings.long_repeats
            )
    if "uap" in settings.parts:
        proxy = load_digits_split("train")[0][: settings.uap_proxy]
        rows += uap_rows(
            model, proxy, test_images, device, settings.uap_passes, settings.uap_attacker
        )
    inception = (
        "InceptionV3 from the given weights file"
        if settings.inception_weights
        else "Random-init InceptionV3 (agreement and times hold; values are not the papers')"
    )
    note = (
        f"`{settings.model}`, device {device}, torch {torch.__version__}, {threads} threads. "
        f"Rounds: PGD {settings.repeats} after a warm-up; IS/FID/KID "
        f"{settings.long_repeats}, cold caches; universal perturbation 1. {inception}."
    )
    return "\n".join([note, "", HEADER, *(row.markdown() for row in rows)])


def main(argv: list[str] | None = None) -> str:
    """Parse the options, run the comparisons and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits:cnn", help=f"one of {MODELS}")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), help=f"any of {PARTS}")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (PGD)")
    parser.add_argument("--long-repeats", type=int, default=1, help="rounds of IS/FID/KID")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--inception-weights", help="torch-fidelity's InceptionV3 weights file")
    parser.add_argument("--batch-size", type=int, default=64, help="Inception batch size")
    parser.add_argument("--uap-passes", type=int, default=UAP_PASSES, help="passes of both UAPs")
    parser.add_argument("--uap-attacker", default="fgsm", help=f"ART's inner attack {ATTACKERS}")
    parser.add_argument("--uap-proxy", type=int, help="first N train digits (default all)")
    args = parser.parse_args(argv)
    settings = Settings(
        model=args.model,
        device=args.device,
        parts=tuple(args.parts),
        repeats=args.repeats,
        long_repeats=args.long_repeats,
        threads=args.threads,
        inception_weights=args.inception_weights,
        batch_size=args.batch_size,
        uap_passes=args.uap_passes,
        uap_attacker=args.uap_attacker,
        uap_proxy=args.uap_proxy,
    )
    result = table(settings)
    print(result)
    return result


if __name__ == "__main__":
    exit_on_user_error(main)
