"""Projected gradient descent (PGD) on images in [0, 1], with the robustness library's semantics.

One attack serves adversarial training, robust evaluation and the "robustness as a prior"
representation tools (which are PGD on a custom loss with a huge ``eps``):

- ``norm="linf"``: ``x <- x + step_size * sign(grad)``, ``delta`` clipped to ``[-eps, eps]``;
  random start uniform in the box.
- ``norm="l2"``: ``x <- x + step_size * grad / ||grad||_2`` per example, ``delta`` projected
  onto the L2 ball of radius ``eps``; random start on the sphere of radius ``eps`` (the
  authors' code, the default) or uniform inside the ball (``l2_start="ball"``, as in
  Foolbox/ART).
- After every step (and the random start) ``x`` is clamped to [0, 1].
- Untargeted attacks ascend the loss; ``targeted=True`` descends it (towards a target).
- ``use_best`` returns, per example, the iterate with the best loss seen (the start and
  the last iterate included); otherwise the last iterate.

The model is kept in eval mode during the attack (and put back as it was), gradients are
taken with respect to the input only, the input is never modified, and nothing leaves the
device inside the loop. The attack works inside ``torch.no_grad()`` or
``torch.inference_mode()`` blocks (e.g. Lightning's validation loop).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.errors import InversionError

Norm = Literal["linf", "l2"]
NORMS: tuple[str, ...] = get_args(Norm)
L2_STARTS = ("sphere", "ball")
TINY = 1e-12

#: A per-example loss: ``loss_fn(model, images, targets) -> N`` values.
LossFn = Callable[[nn.Module, Tensor, Any], Tensor]


def cross_entropy_per_example(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """The default PGD loss: cross-entropy of each example against its label."""
    return F.cross_entropy(model(images).float(), labels, reduction="none")


def _per_example_norm(tensor: Tensor) -> Tensor:
    """L2 norm of each example, shaped to broadcast against the batch."""
    norms = tensor.flatten(1).norm(dim=1)
    return norms.view(-1, *([1] * (tensor.ndim - 1)))


@dataclasses.dataclass(frozen=True)
class PGD:
    """A PGD attack; call it on a model, images in [0, 1] and targets.

    Args:
        eps: Radius of the allowed perturbation (in [0, 1] pixel units).
        step_size: Step length (``alpha``) of each iteration.
        steps: Number of iterations.
        norm: ``"linf"`` or ``"l2"``.
        random_start: Start from a random point of the constraint set, not the input.
        l2_start: For L2 random starts, ``"sphere"`` (on the sphere of radius ``eps``,
            the robustness library's choice) or ``"ball"`` (uniform inside the ball).
        use_best: Return each example's best iterate (start included) instead of the last.

    Raises:
        InversionError: For an unknown norm or start, or negative numbers.
    """

    eps: float
    step_size: float
    steps: int
    norm: str = "l2"
    random_start: bool = False
    l2_start: str = "sphere"
    use_best: bool = True

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise InversionError(f"Unknown PGD norm {self.norm!r}; choose one of {NORMS}.")
        if self.l2_start not in L2_STARTS:
            raise InversionError(
                f"Unknown L2 random start {self.l2_start!r}; choose one of {L2_STARTS}."
            )
        if self.eps < 0 or self.step_size < 0 or self.steps < 0:
            raise InversionError(
                f"PGD needs eps, step_size and steps >= 0; got eps={self.eps}, "
                f"step_size={self.step_size}, steps={self.steps}."
            )

    # --- the three pieces of a PGD iteration ------------------------------------------------
    def project(self, images: Tensor, originals: Tensor) -> Tensor:
        """Bring ``images`` back into the constraint set around ``originals`` and [0, 1]."""
        delta = images - originals
        if self.norm == "linf":
            delta = delta.clamp(-self.eps, self.eps)
        else:
            delta = delta * (self.eps / _per_example_norm(delta).clamp_min(TINY)).clamp(max=1)
        return (originals + delta).clamp(0, 1)

    def ascent_step(self, images: Tensor, grad: Tensor) -> Tensor:
        """Move ``images`` by one step along the (normalised) gradient."""
        if self.norm == "linf":
            return images + self.step_size * grad.sign()
        return images + self.step_size * grad / _per_example_norm(grad).clamp_min(TINY)

    def random_point(self, originals: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A random start in the constraint set (clamped to [0, 1])."""
        shape, device = originals.shape, originals.device
        if self.norm == "linf":
            noise = torch.rand(shape, generator=generator, device=device, dtype=originals.dtype)
            delta = (2 * noise - 1) * self.eps
        else:
            direction = torch.randn(
                shape, generator=generator, device=device, dtype=originals.dtype
            )
            delta = direction / _per_example_norm(direction).clamp_min(TINY) * self.eps
            if self.l2_start == "ball":
                dims = originals[0].numel()
                radius = torch.rand(
                    (len(originals),), generator=generator, device=device, dtype=originals.dtype
                )
                delta = delta * radius.pow(1.0 / dims).view(-1, *([1] * (originals.ndim - 1)))
        return (originals + delta).clamp(0, 1)

    # --- the attack -------------------------------------------------------------------------
    def __call__(
        self,
        model: nn.Module,
        images: Tensor,
        targets: Any,
        *,
        targeted: bool = False,
        loss_fn: LossFn | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Run the attack and return the perturbed images (a new tensor, no gradient).

        Args:
            model: Takes images in [0, 1]; put in eval mode during the attack.
            images: N x C x H x W in [0, 1]; not modified.
            targets: Labels for the default cross-entropy loss (the true labels, or the
                target classes when ``targeted``), or whatever ``loss_fn`` takes.
            targeted: Descend the loss (towards the targets) instead of ascending it.
            loss_fn: Per-example loss ``loss_fn(model, images, targets) -> N``; default
                cross-entropy. Its sum is differentiated, so examples do not interact.
            generator: Random generator of the random start (on the images' device).
            progress: Show a progress bar over the iterations (long runs).

        Returns:
            The adversarial images, N x C x H x W in [0, 1].
        """
        loss_fn = loss_fn or cross_entropy_per_example
        sign = -1.0 if targeted else 1.0  # ascend sign * loss
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode(False), torch.enable_grad():
                originals = images.detach().clone()  # a normal tensor even from inference mode
                if isinstance(targets, Tensor) and targets.is_inference():
                    targets = targets.clone()
                start = self.random_point(originals, generator) if self.random_start else originals
                return self._iterate(model, originals, start, targets, loss_fn, sign, progress)
        finally:
            model.train(was_training)

    def _iterate(
        self,
        model: nn.Module,
        originals: Tensor,
        current: Tensor,
        targets: Any,
        loss_fn: LossFn,
        sign: float,
        progress: bool,
    ) -> Tensor:
        if self.steps == 0 or (self.eps == 0 and not self.random_start):
            return current.detach().clone()
        best, best_score = current.detach().clone(), None
        iterations = range(self.steps)
        if progress:
            import sys

            from tqdm.auto import tqdm

            iterations = tqdm(iterations, desc="PGD", file=sys.stderr, leave=False)
        for _ in iterations:
            current = current.detach().requires_grad_(True)
            losses = loss_fn(model, current, targets)
            (grad,) = torch.autograd.grad(sign * losses.sum(), [current])
            with torch.no_grad():
                if self.use_best:
                    best, best_score = self._keep_best(best, best_score, current, sign * losses)
                current = self.project(self.ascent_step(current, grad), originals)
        if not self.use_best:
            return current.detach()
        with torch.no_grad():
            last_score = sign * loss_fn(model, current, targets)
            best, _ = self._keep_best(best, best_score, current, last_score)
        return best

    @staticmethod
    def _keep_best(
        best: Tensor, best_score: Tensor | None, current: Tensor, score: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Per example, keep whichever of ``best`` and ``current`` has the higher score."""
        score = score.detach().float()
        if best_score is None:
            return current.detach().clone(), score
        better = score > best_score
        mask = better.view(-1, *([1] * (current.ndim - 1)))
        return torch.where(mask, current.detach(), best), torch.where(better, score, best_score)


def pgd(
    model: nn.Module,
    images: Tensor,
    targets: Any,
    *,
    eps: float,
    step_size: float,
    steps: int,
    norm: str = "l2",
    random_start: bool = False,
    l2_start: str = "sphere",
    use_best: bool = True,
    targeted: bool = False,
    loss_fn: LossFn | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Functional form of :class:`PGD` (same arguments); returns the perturbed images."""
    attack = PGD(eps, step_size, steps, norm, random_start, l2_start, use_best)
    return attack(model, images, targets, targeted=targeted, loss_fn=loss_fn, generator=generator)
