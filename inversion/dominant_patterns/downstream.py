"""The downstream setting: a frozen backbone with a new head fine-tuned on another task.

A pattern found on the original classifier is then applied to the fine-tuned one: does
it still change the predictions of a model that shares the backbone but answers another
question? On the digits, the other tasks relabel the same images::

    model = downstream_classifier("digits:cnn", "parity")     # backbone frozen, new head
    save_classifier(model, "runs/downstream/cnn-parity.ckpt")  # itself a classifier spec

From the command line (prints the head's test accuracy and writes the checkpoint)::

    python -m inversion.dominant_patterns.downstream --backbone digits:cnn --task parity \
        --out cnn-parity.ckpt
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from inversion.data.digits import load_digits_split
from inversion.errors import InversionError
from inversion.models import ImageClassifier, build_classifier
from inversion.schedules import warmup_cosine_scheduler
from inversion.training import accuracy, build_optimizer, classification_loss

TASKS: dict[str, tuple[int, Callable[[Tensor], Tensor]]] = {
    "parity": (2, lambda digits: digits % 2),  # even / odd
    "at_least_5": (2, lambda digits: (digits >= 5).long()),  # 0-4 / 5-9
}


def _task(task: str) -> tuple[int, Callable[[Tensor], Tensor]]:
    if task not in TASKS:
        raise InversionError(f"Unknown downstream task {task!r}; choose one of {list(TASKS)}.")
    return TASKS[task]


def relabel(digits: Tensor, task: str) -> Tensor:
    """The labels of a downstream task for digit labels 0..9."""
    return _task(task)[1](digits)


def replace_head(model: ImageClassifier, num_classes: int, seed: int = 0) -> nn.Linear:
    """Freeze ``model`` and give it a new, trainable linear head of ``num_classes`` outputs.

    Returns:
        The new head (its parameters are the only trainable ones).
    """
    if model.head is None:
        raise InversionError(f"{model.name} has no known classification head to replace.")
    old = model.net.get_submodule(model.head)
    if not isinstance(old, nn.Linear):
        raise InversionError(
            f"The head of {model.name} is a {type(old).__name__}, not a linear layer; "
            "replace_head needs a linear classification head."
        )
    model.freeze()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(old.in_features, num_classes)
    parent, _, child = model.head.rpartition(".")
    setattr(model.net.get_submodule(parent) if parent else model.net, child, head)
    model.num_classes = num_classes
    return head.to(old.weight.device)


@torch.no_grad()
def _penultimate(model: ImageClassifier, images: Tensor, batch_size: int = 256) -> Tensor:
    return torch.cat(
        [model.penultimate(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    )


def fit_head(
    model: ImageClassifier,
    head: nn.Linear,
    images: Tensor,
    labels: Tensor,
    epochs: int = 30,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
) -> None:
    """Train ``head`` on the frozen backbone's penultimate features (computed once).

    The recipe of :mod:`inversion.training` (AdamW, cosine decay, cross-entropy); no
    augmentation, since the backbone's features are fixed.
    """
    features = _penultimate(model, images)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = -(-len(features) // batch_size)
    optimizer = build_optimizer(head.parameters(), "adamw", lr, weight_decay)
    scheduler = warmup_cosine_scheduler(optimizer, epochs * steps_per_epoch)
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator).to(features.device)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss = classification_loss(head(features[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    head.eval().requires_grad_(False)


def downstream_classifier(
    backbone: str, task: str, epochs: int = 30, seed: int = 0
) -> ImageClassifier:
    """``backbone`` (a digits classifier spec) frozen, with a new head trained on ``task``.

    Trained on the digits train split relabelled for ``task`` (seconds on a CPU).
    """
    model = build_classifier(backbone)
    head = replace_head(model, _task(task)[0], seed)
    images, digits = load_digits_split("train", model.input_size[0], model.in_chans)
    fit_head(model, head, images, relabel(digits, task), epochs=epochs, seed=seed)
    model.name = f"{backbone}+{task}"
    return model


def downstream_accuracy(model: ImageClassifier, task: str, split: str = "test") -> float:
    """Top-1 accuracy of a downstream classifier on a relabelled digits split."""
    images, digits = load_digits_split(split, model.input_size[0], model.in_chans)
    return accuracy(model, images, relabel(digits, task))


def save_classifier(model: ImageClassifier, path: str | Path, spec: str) -> Path:
    """Write ``model`` as a classifier checkpoint (``build_classifier(path)`` rebuilds it).

    Args:
        model: The classifier.
        path: The file to write.
        spec: The spec of its architecture (e.g. the backbone's ``digits:cnn``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "hyper_parameters": {
            "classifier": spec,
            "pretrained": False,
            "num_classes": model.num_classes,
            "in_chans": model.in_chans,
            "input_size": model.input_size[0] if model.fixed_size else None,
        },
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
    }
    torch.save(checkpoint, path)
    return path


def main(args: list[str] | None = None) -> None:
    """Fine-tune a downstream head and write it as a classifier checkpoint."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--backbone", default="digits:cnn")
    parser.add_argument("--task", default="parity", choices=list(TASKS))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", required=True, help="checkpoint file to write")
    options = parser.parse_args(args)
    model = downstream_classifier(options.backbone, options.task, options.epochs)
    path = save_classifier(model, options.out, options.backbone)
    test = downstream_accuracy(model, options.task)
    print(f"{model.name}: test accuracy {test:.4f}; classifier spec: {path}")


if __name__ == "__main__":
    from inversion.errors import exit_on_user_error

    exit_on_user_error(main)
