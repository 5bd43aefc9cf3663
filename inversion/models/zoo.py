"""The embedded digits zoo: small classifiers trained on the bundled digits on first use.

Each model is trained by a plain, seeded PyTorch loop (the same loss, optimiser and
schedule as :mod:`model_inversion.lightning_modules.classifier`) and cached as a file in
the format of that module's checkpoints, so a cached zoo file is itself a valid classifier spec. The
cache file name carries a hash of the recipe: changing a recipe retrains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import cast

import torch

from inversion.attacks import PGD
from inversion.data.digits import NUM_CLASSES, load_digits_split, random_translate
from inversion.errors import InversionError
from inversion.models.classifier import ImageClassifier
from inversion.models.digits_nets import FIXED_SIZE, build_digits_net
from inversion.models.weights import module_substate
from inversion.paths import cache_dir, cached_torch_file
from inversion.schedules import warmup_cosine_scheduler
from inversion.training import accuracy, build_optimizer, classification_loss

ZOO_FORMAT = 2
DIGITS_MEAN = (0.5,)
DIGITS_STD = (0.5,)


@dataclasses.dataclass(frozen=True)
class ZooRecipe:
    """How one embedded model is trained (every field enters the cache key)."""

    arch: str
    seed: int
    epochs: int
    lr: float
    weight_decay: float
    batch_size: int = 64
    max_shift: int = 2
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    image_size: int = 32
    in_chans: int = 1
    adv_norm: str | None = None
    adv_eps: float | None = None
    adv_step_size: float | None = None
    adv_steps: int | None = None

    def key(self) -> str:
        """Short hash of the recipe and the zoo format (unset optional fields left out)."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        text = json.dumps({"format": ZOO_FORMAT, **fields}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    def attack(self) -> PGD | None:
        """The PGD attack of adversarial training, or None for standard training."""
        if self.adv_norm is None:
            return None
        if self.adv_eps is None or self.adv_step_size is None or self.adv_steps is None:
            raise ValueError("adv_norm needs adv_eps, adv_step_size and adv_steps as well.")
        return PGD(self.adv_eps, self.adv_step_size, self.adv_steps, self.adv_norm)


ZOO: dict[str, ZooRecipe] = {
    "cnn": ZooRecipe("cnn", seed=1, epochs=8, lr=3e-3, weight_decay=1e-4),
    "resnet": ZooRecipe("resnet", seed=2, epochs=8, lr=3e-3, weight_decay=1e-4),
    # three residual blocks per stage: the deep target of the layer-wise benchmark
    "resnet-deep": ZooRecipe("resnet-deep", seed=6, epochs=8, lr=3e-3, weight_decay=1e-4),
    "vit": ZooRecipe(
        "vit", seed=3, epochs=25, lr=2e-3, weight_decay=5e-2, warmup_epochs=3, label_smoothing=0.1
    ),
    "mlp": ZooRecipe(
        "mlp", seed=4, epochs=25, lr=2e-3, weight_decay=5e-2, warmup_epochs=3, label_smoothing=0.1
    ),
    # the CNN adversarially trained with L2 PGD (7 steps of 2.5 eps / 7, best iterate)
    "cnn-robust": ZooRecipe(
        "cnn",
        seed=5,
        epochs=8,
        lr=3e-3,
        weight_decay=1e-4,
        adv_norm="l2",
        adv_eps=2.0,
        adv_step_size=2.5 * 2.0 / 7,
        adv_steps=7,
    ),
}


def wrap_digits_net(
    arch: str,
    in_chans: int = 1,
    num_classes: int = NUM_CLASSES,
    image_size: int = 32,
    name: str | None = None,
) -> ImageClassifier:
    """Build an untrained digits architecture inside an :class:`ImageClassifier`."""
    net = build_digits_net(arch, in_chans, num_classes, image_size)
    return ImageClassifier(
        net,
        name=name or f"digits:{arch}",
        num_classes=num_classes,
        in_chans=in_chans,
        input_size=(image_size, image_size),
        mean=DIGITS_MEAN * in_chans,
        std=DIGITS_STD * in_chans,
        fixed_size=arch in FIXED_SIZE,
        head="head",
        feature_layers=cast(list[str], net.feature_layers),  # the digits nets' attribute
    )


def zoo_path(name: str, recipe: ZooRecipe | None = None) -> Path:
    """Where the cached model ``digits:name`` lives (it may not exist yet).

    ``recipe`` (default: the zoo's) names a variant, e.g. another seed; cached by its key.
    """
    return cache_dir() / "zoo" / f"digits-{name}-{(recipe or ZOO[name]).key()}.pt"


def train_zoo_model(name: str, progress: bool = True, recipe: ZooRecipe | None = None) -> dict:
    """Train ``digits:name`` from its recipe (or ``recipe``) and return the checkpoint dict.

    Deterministic: the initialisation, batch order and augmentation come from the
    recipe's seed.
    """
    recipe = recipe or ZOO[name]
    generator = torch.Generator().manual_seed(recipe.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = wrap_digits_net(recipe.arch, recipe.in_chans, NUM_CLASSES, recipe.image_size)
    attack = recipe.attack()
    train_x, train_y = load_digits_split("train", recipe.image_size, recipe.in_chans)
    steps_per_epoch = -(-len(train_x) // recipe.batch_size)
    optimizer = build_optimizer(model.parameters(), "adamw", recipe.lr, recipe.weight_decay)
    scheduler = warmup_cosine_scheduler(
        optimizer, recipe.epochs * steps_per_epoch, recipe.warmup_epochs * steps_per_epoch
    )
    start = time.perf_counter()
    epochs = range(recipe.epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(
            epochs, desc=f"training digits:{name} (first use)", file=sys.stderr, leave=False
        )
    model.train()
    with torch.enable_grad():  # first use may come inside a caller's no_grad()
        for _ in epochs:
            order = torch.randperm(len(train_x), generator=generator)
            for begin in range(0, len(order), recipe.batch_size):
                idx = order[begin : begin + recipe.batch_size]
                images = random_translate(train_x[idx], recipe.max_shift, generator)
                if attack is not None:  # adversarial training: the batch becomes PGD examples
                    images = attack(model, images, train_y[idx])
                loss = classification_loss(model(images), train_y[idx], recipe.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
    seconds = time.perf_counter() - start
    metrics = {
        split: accuracy(model, *load_digits_split(split, recipe.image_size, recipe.in_chans))
        for split in ("val", "test")
    }
    return {
        "hyper_parameters": {
            "classifier": f"digits:{name}",
            "pretrained": False,
            "num_classes": NUM_CLASSES,
            "in_chans": recipe.in_chans,
            "input_size": recipe.image_size,
        },
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "zoo": {
            "recipe": dataclasses.asdict(recipe),
            "val_accuracy": metrics["val"],
            "test_accuracy": metrics["test"],
            "train_seconds": seconds,
            "torch": str(torch.__version__),
        },
    }


def zoo_checkpoint(name: str, recipe: ZooRecipe | None = None) -> dict:
    """Return the cached checkpoint of ``digits:name``, training it on first use.

    ``recipe`` (default: the zoo's) trains and caches a variant of it instead.
    """
    if name not in ZOO:
        raise InversionError(
            f"Unknown embedded model digits:{name}; choose one of "
            f"{', '.join('digits:' + n for n in ZOO)}."
        )
    return cached_torch_file(zoo_path(name, recipe), lambda: train_zoo_model(name, recipe=recipe))


def zoo_variant(name: str, seed: int) -> ZooRecipe:
    """The recipe of ``digits:name`` trained from another seed (seed 0: the zoo's own).

    Seed ``s > 0`` sets the recipe's seed to ``1000 * s`` plus the zoo's, a seed no zoo
    recipe uses; the benchmarks' seeds of a model's training (``load_zoo_model(name,
    zoo_variant(name, s))``).
    """
    recipe = ZOO[name]
    return recipe if seed == 0 else dataclasses.replace(recipe, seed=recipe.seed + 1000 * seed)


def load_zoo_model(name: str, recipe: ZooRecipe | None = None) -> ImageClassifier:
    """Return the trained embedded model ``digits:name`` (trained on first use).

    ``recipe`` (default: the zoo's, e.g. :func:`zoo_variant`) loads that variant instead,
    trained by the same loop on its first use and cached by its key.
    """
    checkpoint = zoo_checkpoint(name, recipe)
    hparams = checkpoint["hyper_parameters"]
    model = wrap_digits_net(
        (recipe or ZOO[name]).arch,
        hparams["in_chans"],
        hparams["num_classes"],
        hparams["input_size"],
        name=f"digits:{name}",
    )
    model.load_state_dict(module_substate(checkpoint, "model"))
    return model.eval()


def zoo_table() -> str:
    """A Markdown table of the zoo: architecture, parameters, accuracies, training time."""
    rows = [
        "| spec | parameters | val top-1 | test top-1 | train time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ZOO:
        checkpoint = zoo_checkpoint(name)
        params = sum(
            v.numel()
            for k, v in checkpoint["state_dict"].items()
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        )
        info = checkpoint["zoo"]
        rows.append(
            f"| `digits:{name}` | {params:,} | {100 * info['val_accuracy']:.1f}% | "
            f"{100 * info['test_accuracy']:.1f}% | {info['train_seconds']:.0f} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(zoo_table())
