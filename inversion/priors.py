"""Image priors and the batch-norm statistics term of DeepInversion / DeepDream.

- :func:`total_variation_l2` and :func:`l2_prior`: DeepInversion's ``loss_var_l2`` and
  ``||x||_2`` priors (the class inverter gives them the normalised image, as the NVlabs
  code does, or the image in [0, 1]: its recipe's ``prior_space``).
- :class:`BatchNormStatistics`: DeepInversion's feature-distribution regulariser, the
  distance between the batch statistics of every ``BatchNorm2d`` input and the layer's
  running statistics.
- :func:`competition_loss`: Adaptive DeepInversion's teacher-student competition term.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import TracebackType
from typing import Literal, cast, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from inversion.errors import InversionError

__all__ = [
    "COMPETITION_FORMS",
    "BatchNormStatistics",
    "CompetitionForm",
    "competition_loss",
    "l2_prior",
    "total_variation_l2",
]

CompetitionForm = Literal["clamped", "exact"]
COMPETITION_FORMS: tuple[str, ...] = get_args(CompetitionForm)
# The NVlabs code clamps the teacher, student and mixture probabilities to this range.
_CLAMP = (0.01, 0.99)

# The layers whose input statistics DeepInversion matches (SyncBatchNorm is what
# BatchNorm2d becomes after ``convert_sync_batchnorm``).
_BATCH_NORMS = (nn.BatchNorm2d, nn.SyncBatchNorm)


def _check_images(images: Tensor) -> None:
    """Raise unless ``images`` is a 4-d tensor."""
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise InversionError(f"Expected images as an N x C x H x W tensor, got {shape}.")


def total_variation_l2(images: Tensor) -> Tensor:
    """DeepInversion's ``loss_var_l2``: L2 norms of four neighbour differences.

    With ``d1 = x[..., :, :-1] - x[..., :, 1:]`` (horizontal), ``d2`` (vertical) and the
    two diagonals ``d3``, ``d4``, returns ``||d1|| + ||d2|| + ||d3|| + ||d4||``, each a
    Frobenius norm over the whole batch.

    Args:
        images: N x C x H x W images.

    Returns:
        A scalar tensor.
    """
    _check_images(images)
    x = images
    d1 = x[..., :, :-1] - x[..., :, 1:]
    d2 = x[..., :-1, :] - x[..., 1:, :]
    d3 = x[..., 1:, :-1] - x[..., :-1, 1:]
    d4 = x[..., :-1, :-1] - x[..., 1:, 1:]
    return sum((torch.linalg.vector_norm(d) for d in (d1, d2, d3, d4)), x.new_zeros(()))


def l2_prior(images: Tensor) -> Tensor:
    """Mean over the batch of each image's L2 norm.

    Args:
        images: N x C x H x W images.

    Returns:
        A scalar tensor.
    """
    _check_images(images)
    return images.flatten(1).norm(dim=1).mean()


class BatchNormStatistics:
    """DeepInversion's batch-norm prior, recorded by forward hooks.

    Hooks every ``nn.BatchNorm2d`` of ``module``; during a forward pass each records
    ``||mean_batch - running_mean||_2 + ||var_batch - running_var||_2``, the statistics of
    the layer's *input* over dims (0, 2, 3) (biased variance). :meth:`loss` sums them over
    layers, the first batch-norm layer (in module order) weighted by ``first_multiplier``.
    The loss is differentiable with respect to the network's input.

    Example::

        with BatchNormStatistics(model) as bn:
            logits = model(images)
            loss = criterion(logits, targets) + 0.01 * bn.loss()

    Args:
        module: The (frozen) network; it must contain batch norm with running statistics.
        first_multiplier: Weight of the first batch-norm layer (10 in DeepInversion).
    """

    def __init__(self, module: nn.Module, first_multiplier: float = 10.0) -> None:
        self.layers: list[nn.Module] = [m for m in module.modules() if isinstance(m, _BATCH_NORMS)]
        if not self.layers:
            raise InversionError(
                f"DeepInversion's batch-norm prior needs a model with batch norm "
                f"(BatchNorm2d layers, e.g. digits:cnn, digits:resnet); "
                f"{type(module).__name__} has none (ViT/MLP models do not). "
                f"Use a recipe without the batch-norm term (e.g. Plug-In Inversion or DeepDream)."
            )
        if any(m.running_mean is None or m.running_var is None for m in self.layers):
            raise InversionError(
                "DeepInversion's batch-norm prior needs batch-norm layers with running "
                "statistics; this model has BatchNorm2d(track_running_stats=False)."
            )
        self.first_multiplier = float(first_multiplier)
        self._records: dict[int, Tensor] = {}
        self._handles: list[RemovableHandle] = [
            layer.register_forward_hook(self._make_hook(index))
            for index, layer in enumerate(self.layers)
        ]
        # A new forward pass of the whole module starts a fresh record.
        self._handles.append(module.register_forward_pre_hook(self._clear))

    def _clear(self, _module: nn.Module, _inputs: tuple[object, ...]) -> None:
        """Forget the previous forward pass."""
        self._records.clear()

    def _make_hook(self, index: int) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], None]:
        """The forward hook that records layer ``index``'s statistics distance."""

        def hook(layer: nn.Module, inputs: tuple[Tensor, ...], _output: Tensor) -> None:
            x = inputs[0]
            if x.ndim != 4:
                raise InversionError(
                    f"The batch-norm prior expects 4-d inputs to batch-norm layers, got "
                    f"{tuple(x.shape)} at {type(layer).__name__}."
                )
            var, mean = torch.var_mean(x.float(), dim=(0, 2, 3), correction=0)
            # batch-norm buffers, checked in __init__ (an nn.Module types them loosely)
            running_mean = cast(Tensor, layer.running_mean)
            running_var = cast(Tensor, layer.running_var)
            self._records[index] = torch.linalg.vector_norm(
                mean - running_mean
            ) + torch.linalg.vector_norm(var - running_var)

        return hook

    @property
    def layer_losses(self) -> list[Tensor]:
        """The unweighted distance of every layer reached in the most recent forward pass."""
        return [self._records[i] for i in sorted(self._records)]

    def loss(self) -> Tensor:
        """The weighted sum over batch-norm layers for the most recent forward pass.

        Returns:
            A scalar tensor (float32).
        """
        if not self._records:
            raise InversionError(
                "BatchNormStatistics.loss() needs a forward pass of the model first "
                "(and the hooks must not have been removed before it)."
            )
        terms = [
            self._records[i] * self.first_multiplier if i == 0 else self._records[i]
            for i in sorted(self._records)
        ]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def remove(self) -> None:
        """Remove the hooks (idempotent); recorded values stay readable."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> BatchNormStatistics:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()


def competition_loss(
    teacher_logits: Tensor,
    student_logits: Tensor,
    temperature: float = 3.0,
    form: CompetitionForm = "clamped",
) -> Tensor:
    """Adaptive DeepInversion's competition term ``1 - JS(P_teacher, P_student)``.

    ``P = softmax(logits / T)`` and ``M = (P_t + P_s) / 2``; both forms are averaged over
    the batch, equal 1 where the two distributions agree and are lower where they
    disagree (minimising the term drives the images towards teacher-student
    disagreement).

    - ``clamped`` (the NVlabs code, the default): ``P_t``, ``P_s`` and ``M`` are clamped to
      [0.01, 0.99] (``M`` from the unclamped pair), the divergence is
      ``(KL(M || P_t) + KL(M || P_s)) / 2`` (``nn.KLDivLoss`` with the mixture as target,
      as the reference writes it) and is clamped to [0, 1] before ``1 -``. Finite, with
      finite gradients, for any logits (one-hot probabilities included); saturated
      probabilities pass no gradient through the clamp.
    - ``exact``: the Jensen-Shannon divergence ``(KL(P_t || M) + KL(P_s || M)) / 2``
      computed in log space (``log M = logaddexp(log P_t, log P_s) - log 2``), so no
      ``log(0)`` can occur; the value lies in ``[1 - ln 2, 1]``.

    Args:
        teacher_logits: N x K logits of the inverted (teacher) network.
        student_logits: N x K logits of the student network.
        temperature: Softmax temperature T > 0.
        form: ``clamped`` (reference) or ``exact``.

    Returns:
        A scalar tensor.
    """
    if teacher_logits.ndim != 2 or teacher_logits.shape != student_logits.shape:
        raise InversionError(
            f"competition_loss needs teacher and student logits of the same N x K shape, got "
            f"{tuple(teacher_logits.shape)} and {tuple(student_logits.shape)}."
        )
    if temperature <= 0:
        raise InversionError(f"competition_loss needs temperature > 0, got {temperature}.")
    if form not in COMPETITION_FORMS:
        raise InversionError(
            f"Unknown competition form {form!r}; choose one of {COMPETITION_FORMS}."
        )
    log_pt = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    log_ps = F.log_softmax(student_logits.float() / temperature, dim=1)
    if form == "clamped":
        p_t, p_s = log_pt.exp(), log_ps.exp()
        m = (0.5 * (p_t + p_s)).clamp(*_CLAMP)
        log_m = m.log()
        kl_t = (m * (log_m - p_t.clamp(*_CLAMP).log())).sum(dim=1)
        kl_s = (m * (log_m - p_s.clamp(*_CLAMP).log())).sum(dim=1)
        return 1.0 - (0.5 * (kl_t + kl_s)).mean().clamp(0.0, 1.0)
    log_m = torch.logaddexp(log_pt, log_ps) - math.log(2.0)
    kl_t = (log_pt.exp() * (log_pt - log_m)).sum(dim=1)
    kl_s = (log_ps.exp() * (log_ps - log_m)).sum(dim=1)
    js = 0.5 * (kl_t + kl_s)
    return 1.0 - js.mean()
