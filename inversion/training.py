"""The supervised classification recipe: loss, optimiser, schedule, accuracy.

Shared by the zoo's plain loop and the Lightning classifier module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.errors import InversionError

OptimizerName = Literal["adamw", "sgd"]
OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)


def classification_loss(logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy of logits against integer labels."""
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


def build_optimizer(
    params: Iterable[nn.Parameter],
    name: OptimizerName = "adamw",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """Build the optimiser of a classifier recipe (``adamw`` or ``sgd`` with Nesterov)."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0
        )
    raise InversionError(f"Unknown optimizer {name!r}; choose one of {OPTIMIZERS}.")


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on tensors of images and labels (eval mode)."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long)
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size])
        correct += (logits.argmax(1) == labels[start : start + batch_size]).sum()
    model.train(was_training)
    return correct.item() / max(len(images), 1)
