"""Clean and robust accuracy as the field reports them: over a list of eps in one call.

An example counts as robust at ``eps`` when the model classifies both its clean input and
its adversarial example correctly: the clean input is a point of the ball too. That is
AutoAttack's (and RobustBench's) rule. For the PGD evaluation here, which starts at the clean
input and keeps each example's best iterate, it differs from the accuracy on the adversarial
examples alone only where the highest-loss iterate is classified correctly while the clean
input is not. At ``eps = 0`` the ball is the input itself: robust accuracy is clean accuracy.

Two attacks:

- ``pgd`` (default): :class:`inversion.attacks.PGD` with ``steps`` steps of
  ``2.5 * eps / steps``, no random start, best iterate (the robustness library's evaluation;
  the settings of ``RobustClassifierModule``'s test and of the README's robust-prior table).
- ``autoattack``: the standard AutoAttack of Croce & Hein (ICML 2020), run by the authors'
  code as packaged on PyPI (``pyautoattack``, the optional extra
  ``pip install "model-inversion[autoattack]"``); see :func:`autoattack_images`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from inversion.attacks import PGD, Norm
from inversion.errors import InversionError
from inversion.robust_prior.defaults import default_step_size

EvalAttack = Literal["pgd", "autoattack"]
"""The evaluation attacks: PGD (built in) or the standard AutoAttack (an optional extra)."""
EVAL_ATTACKS: tuple[str, ...] = get_args(EvalAttack)
"""The names of :data:`EvalAttack`, for messages and checks."""
EVAL_STEPS = 20
"""PGD steps of the robust evaluation (PGD-20)."""
AUTOATTACK_INSTALL = 'pip install "model-inversion[autoattack]"'
"""The command that installs the AutoAttack extra (named in the error when it is missing)."""
AUTOATTACK_TARGETS = 9  # target classes of APGD-T and FAB-T in the standard version
AUTOATTACK_NORMS = {"l2": "L2", "linf": "Linf"}


def robust_acc_key(eps: float) -> str:
    """The name of the robust accuracy at ``eps`` (``0.5`` -> ``robust_acc@0.5``)."""
    return f"robust_acc@{eps:g}"


def eval_pgd(eps: float, steps: int = EVAL_STEPS, norm: Norm = "l2") -> PGD:
    """The evaluation's PGD: steps of 2.5 eps / steps, no random start, best iterate."""
    return PGD(eps, default_step_size(eps, steps), steps, norm)


def require_autoattack() -> Any:
    """The ``AutoAttack`` class of ``pyautoattack``, or one clear error naming the install."""
    try:
        from pyautoattack import AutoAttack
    except ImportError as error:
        raise InversionError(
            f"AutoAttack needs the optional package pyautoattack: {AUTOATTACK_INSTALL}"
        ) from error
    return AutoAttack


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def correct_predictions(
    model: nn.Module, images: Tensor, labels: Tensor, batch_size: int | None = None
) -> Tensor:
    """Per image, whether ``model`` (in eval mode) classifies it as ``labels`` (bool, N)."""
    size = batch_size or max(len(images), 1)
    with torch.no_grad(), _eval_mode(model):
        parts = [
            model(images[i : i + size]).argmax(dim=1) == labels[i : i + size]
            for i in range(0, len(images), size)
        ]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.bool, device=labels.device)


def autoattack_images(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    eps: float,
    norm: Norm = "l2",
    seed: int = 0,
    batch_size: int | None = None,
) -> Tensor:
    """Adversarial examples of the standard AutoAttack (Croce & Hein, ICML 2020).

    The authors' code (github.com/fra31/auto-attack, whose attack files ``pyautoattack``
    0.2.0 ships unchanged), ``version="standard"``, in this order, each on the examples still
    classified correctly: APGD-CE (100 iterations, no restart), APGD-T (targeted DLR loss, 9
    target classes, 100 iterations each), FAB-T (9 target classes, 100 iterations each) and
    Square (5000 queries, ``p_init`` 0.8), in the L2 or L-inf ball of radius ``eps`` around
    images in [0, 1]. Models with fewer than 10 classes get ``classes - 1`` targets (the
    standard version's 9 do not exist). Examples the model misclassifies are returned
    unattacked, as the original does. The attacks' seed is ``seed`` and the caller's random
    state is left as it was; the model is in eval mode meanwhile, with autocast off (the DLR
    loss divides logit differences that bf16 would round). The package's sanity checks
    (randomised or dynamic defences, probabilities for logits) may warn through logging.

    Args:
        model: Takes images in [0, 1], returns logits.
        images: N x C x H x W in [0, 1]; not modified.
        labels: N true labels.
        eps: Radius of the ball (in [0, 1] pixel units).
        norm: ``l2`` or ``linf``.
        seed: Seed of the attacks' random starts and Square's sampling.
        batch_size: Images per attack batch (default: all at once).

    Returns:
        The adversarial images, N x C x H x W in [0, 1], within ``eps`` of ``images``.

    Raises:
        InversionError: When ``pyautoattack`` is not installed, or for an unknown norm.
    """
    if norm not in AUTOATTACK_NORMS:
        raise InversionError(
            f"Unknown AutoAttack norm {norm!r}; choose one of {tuple(AUTOATTACK_NORMS)}."
        )
    if eps < 0:
        raise InversionError(f"AutoAttack needs eps >= 0, got {eps}.")
    auto_attack = require_autoattack()
    if len(images) == 0 or eps == 0:
        return images.detach().clone()
    device = images.device
    forked = [device.index or 0] if device.type == "cuda" else []
    full_precision: AbstractContextManager = (
        torch.autocast(device.type, enabled=False)
        if device.type in ("cpu", "cuda")
        else nullcontext()
    )
    with (
        torch.inference_mode(False),
        torch.random.fork_rng(devices=forked),
        full_precision,
        _eval_mode(model),
    ):
        originals, targets = images.detach().clone(), labels.detach().clone()
        adversary = auto_attack(
            model, norm=AUTOATTACK_NORMS[norm], eps=eps, seed=seed, device=device
        )
        with torch.no_grad():
            classes = model(originals[:1]).shape[1]
        targets_count = min(AUTOATTACK_TARGETS, classes - 1)
        adversary.apgd_targeted.n_target_classes = targets_count
        adversary.fab.n_target_classes = targets_count
        adversarial, _ = adversary.run_standard_evaluation(
            originals, targets, batch_size=batch_size or len(originals)
        )
    return adversarial.to(images.dtype)


def adversarial_images(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    eps: float,
    attack: EvalAttack = "pgd",
    norm: Norm = "l2",
    steps: int = EVAL_STEPS,
    seed: int = 0,
    batch_size: int | None = None,
) -> Tensor:
    """The evaluation attack's adversarial examples at ``eps`` (see the module docstring).

    Args:
        model: Takes images in [0, 1], returns logits.
        images: N x C x H x W in [0, 1]; not modified.
        labels: N true labels.
        eps: Radius of the ball.
        attack: ``pgd`` or ``autoattack`` (:func:`autoattack_images`).
        norm: ``l2`` or ``linf``.
        steps: PGD steps (AutoAttack's budgets are fixed).
        seed: AutoAttack's seed (PGD here has no random start).
        batch_size: Images per attack batch (default: all at once).

    Raises:
        InversionError: For an unknown attack or norm, or AutoAttack not installed.
    """
    if attack == "autoattack":
        return autoattack_images(model, images, labels, eps, norm, seed, batch_size)
    if attack != "pgd":
        raise InversionError(f"Unknown evaluation attack {attack!r}; choose one of {EVAL_ATTACKS}.")
    pgd = eval_pgd(eps, steps, norm)
    size = batch_size or max(len(images), 1)
    parts = [
        pgd(model, images[i : i + size], labels[i : i + size]) for i in range(0, len(images), size)
    ]
    return torch.cat(parts) if parts else images.detach().clone()


def robust_correct(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    eps: float,
    attack: EvalAttack = "pgd",
    norm: Norm = "l2",
    steps: int = EVAL_STEPS,
    seed: int = 0,
    batch_size: int | None = None,
    clean_correct: Tensor | None = None,
) -> Tensor:
    """Per image, whether it is robust at ``eps``: clean and adversarial example correct.

    Args:
        model: Takes images in [0, 1], returns logits.
        images: N x C x H x W in [0, 1].
        labels: N true labels.
        eps: Radius of the ball (0: the clean correctness).
        attack: ``pgd`` or ``autoattack``.
        norm: ``l2`` or ``linf``.
        steps: PGD steps.
        seed: AutoAttack's seed.
        batch_size: Images per batch (default: all at once).
        clean_correct: The clean correctness if already known (``correct_predictions``).

    Returns:
        A bool tensor of N.
    """
    if clean_correct is None:
        clean_correct = correct_predictions(model, images, labels, batch_size)
    if eps == 0:
        return clean_correct.clone()
    adversarial = adversarial_images(
        model, images, labels, eps, attack, norm, steps, seed, batch_size
    )
    return clean_correct & correct_predictions(model, adversarial, labels, batch_size)


def accuracy_over_eps(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    eps: Sequence[float],
    attack: EvalAttack = "pgd",
    norm: Norm = "l2",
    steps: int = EVAL_STEPS,
    seed: int = 0,
    batch_size: int | None = None,
) -> dict[str, float]:
    """Clean accuracy and robust accuracy at every eps, in one call.

    One clean pass over the images, shared, then one attack pass per eps. With ``pgd`` the
    settings are those of :func:`eval_pgd` (the README's table: PGD-20, L2); with
    ``autoattack`` the standard AutoAttack (:func:`autoattack_images`).

    Args:
        model: Takes images in [0, 1], returns logits.
        images: N x C x H x W in [0, 1].
        labels: N true labels.
        eps: The radii (0 is allowed: it gives the clean accuracy).
        attack: ``pgd`` or ``autoattack``.
        norm: ``l2`` or ``linf``.
        steps: PGD steps.
        seed: AutoAttack's seed.
        batch_size: Images per batch (default: all at once).

    Returns:
        ``{"clean_acc": ..., "robust_acc@<eps>": ...}`` (keys by :func:`robust_acc_key`),
        fractions in [0, 1].

    Raises:
        InversionError: For a negative eps, an unknown attack or norm, or AutoAttack missing.
    """
    if any(e < 0 for e in eps):
        raise InversionError(f"eps must be 0 or more, got {list(eps)}.")
    if attack not in EVAL_ATTACKS:
        raise InversionError(f"Unknown evaluation attack {attack!r}; choose one of {EVAL_ATTACKS}.")
    if attack == "autoattack":
        require_autoattack()  # fail before any work
    count = max(len(images), 1)
    clean = correct_predictions(model, images, labels, batch_size)
    results = {"clean_acc": clean.sum().item() / count}
    for radius in eps:
        robust = robust_correct(
            model, images, labels, radius, attack, norm, steps, seed, batch_size, clean
        )
        results[robust_acc_key(radius)] = robust.sum().item() / count
    return results


__all__ = [
    "AUTOATTACK_INSTALL",
    "EVAL_ATTACKS",
    "EVAL_STEPS",
    "EvalAttack",
    "accuracy_over_eps",
    "adversarial_images",
    "autoattack_images",
    "correct_predictions",
    "eval_pgd",
    "require_autoattack",
    "robust_acc_key",
    "robust_correct",
]
