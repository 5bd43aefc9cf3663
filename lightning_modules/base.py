"""The base of every LightningModule here: init args saved, then three build hooks."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from inversion.models import ImageClassifier, build_classifier


class BaseTask(pl.LightningModule):
    """A LightningModule built in three hooks, after its init args are saved.

    Subclasses take plain, serialisable init args (spec strings, layer names, numbers),
    so YAML configs and ``load_from_checkpoint`` just work, and implement
    :meth:`configure_models`; :meth:`configure_losses` and :meth:`configure_metrics`
    are optional. The maths lives in ``inversion/``; a task only wires it.

    Frozen models (targets, verifiers, teachers) are attached with
    :meth:`attach_frozen`: they move with the module (``.to(device)``, dtype casts) but
    are not submodules, so they are never saved in checkpoints or wrapped by DDP; they
    are rebuilt from their specs.

    Checkpoints carry the random number generators' states (CPU and CUDA), so a run
    resumed from a checkpoint draws the same shuffles, augmentations and random starts
    as the uninterrupted run (under DDP, every process resumes with the saving process's
    states). Subclasses that override the checkpoint hooks call ``super()``.

    Args:
        ignore: Init args not to save as hyperparameters.
    """

    def __init__(self, ignore: list[str] | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "_frozen_models", {})
        self.save_hyperparameters(ignore=["ignore", *(ignore or [])])
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    def configure_models(self) -> None:
        """Build the networks from ``self.hparams``."""
        raise NotImplementedError

    def configure_losses(self) -> None:
        """Build the loss functions (optional)."""

    def configure_metrics(self) -> None:
        """Build the torchmetrics metrics (optional)."""

    def attach_frozen(self, name: str, model: nn.Module | None) -> None:
        """Make ``self.<name>`` a frozen model that moves with the module but is never saved."""
        object.__setattr__(self, name, model)
        if model is None:
            self._frozen_models.pop(name, None)
        else:
            self._frozen_models[name] = model

    def frozen_target(self) -> ImageClassifier:
        """The frozen classifier named by the shared hyperparameters.

        Modules that invert or attack a classifier take ``classifier``, ``weights``,
        ``pretrained``, ``classifier_num_classes`` and ``input_size``; this builds it.
        """
        hp = self.hparams
        return build_classifier(
            hp.classifier,
            num_classes=hp.classifier_num_classes,
            input_size=hp.input_size,
            pretrained=hp.pretrained,
            weights=hp.weights,
        ).freeze()

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> BaseTask:
        """Move the frozen models along with the module."""
        super()._apply(fn, *args, **kwargs)
        for model in self._frozen_models.values():
            model._apply(fn, *args, **kwargs)
        return self

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save the random number generators' states."""
        checkpoint["rng_states"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the random number generators' states (when the checkpoint has them)."""
        states = checkpoint.get("rng_states") or {}
        if "torch" in states:
            torch.set_rng_state(states["torch"].cpu())
        cuda = states.get("cuda")
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([state.cpu() for state in cuda])
