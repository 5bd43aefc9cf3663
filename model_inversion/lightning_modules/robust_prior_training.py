"""Adversarial training with PGD (Madry et al.; the robustness library's recipe)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torchmetrics import MetricCollection

from inversion.attacks import PGD, Norm
from inversion.errors import InversionError
from inversion.metrics.scorer import top_k_accuracy
from inversion.robust_prior import default_step_size, eps_name
from inversion.training import OptimizerName, classification_loss
from model_inversion.lightning_modules.classifier import ClassifierModule


class RobustClassifierModule(ClassifierModule):
    """Train a classifier on PGD adversarial examples; report clean and robust accuracy.

    Each training batch is replaced by PGD examples made against the current model (in
    eval mode during the attack, as in the robustness library) before the usual update;
    ``train/acc`` is the accuracy on those examples.

    Validation reports the clean accuracy ``val/acc`` on the whole split and, by default,
    a cheap robust estimate ``val/robust_acc_subset``: the accuracy under the training
    attack made deterministic (``steps`` steps of ``step_size`` at ``eps``, no random
    start, best iterate; the robustness library validates with the training attack too)
    on the first ``robust_subset_batches`` validation batches only, the same images every
    epoch (per process under DDP). That costs what as many training batches cost, however
    large the split. With ``full_robust_eval`` validation instead reports the full
    evaluation that test always reports: ``robust_acc`` (PGD with ``eval_steps`` steps at
    the training eps, no random start, best iterate) and ``robust_acc_eps<e>`` for every
    eps in ``extra_eval_eps``, on every batch. The attacks need gradients, so they run
    inside Lightning's inference mode with their own grad mode. Checkpoints are
    classifier specs like :class:`ClassifierModule`'s.

    Args:
        optimizer: ``sgd`` (the reference recipe: lr 0.1, momentum 0.9) or ``adamw``.
        lr: Peak learning rate (warm-up, then cosine decay).
        weight_decay: Weight decay.
        norm: ``l2`` or ``linf``.
        eps: Radius of the training (and evaluation) perturbation, in [0, 1] pixel units.
        steps: PGD steps during training (7 in the reference runs).
        step_size: Step length; default ``2.5 * eps / steps``.
        random_start: Random start of the training attack.
        use_best: Train on each example's best PGD iterate (the robustness library's
            default) instead of the last.
        eval_steps: PGD steps of the full robust evaluation (test, and validation with
            ``full_robust_eval``).
        extra_eval_eps: More eps at which the full evaluation measures robust accuracy.
        full_robust_eval: Validate with the full evaluation (every eps, ``eval_steps``
            steps, every batch) instead of the subset estimate; test always does.
        robust_subset_batches: Validation batches that the default estimate attacks (0:
            clean accuracy only).
        **classifier_args: The network and the rest of the recipe: ``classifier``,
            ``pretrained``, ``weights``, ``num_classes``, ``in_chans``, ``input_size``,
            ``momentum``, ``label_smoothing``, ``warmup_epochs``, ``channels_last`` (see
            :class:`ClassifierModule`).
    """

    def __init__(
        self,
        optimizer: OptimizerName = "sgd",
        lr: float = 0.1,
        weight_decay: float = 5e-4,
        norm: Norm = "l2",
        eps: float = 0.5,
        steps: int = 7,
        step_size: float | None = None,
        random_start: bool = False,
        use_best: bool = True,
        eval_steps: int = 20,
        extra_eval_eps: list[float] | None = None,
        full_robust_eval: bool = False,
        robust_subset_batches: int = 2,
        **classifier_args: Any,
    ) -> None:
        if robust_subset_batches < 0:
            raise InversionError(
                f"robust_subset_batches must be 0 or more, got {robust_subset_batches}."
            )
        super().__init__(optimizer=optimizer, lr=lr, weight_decay=weight_decay, **classifier_args)

    def configure_losses(self) -> None:
        """The attacks (built here so that bad settings fail before any work)."""
        hp = self.hparams
        step = hp.step_size if hp.step_size is not None else default_step_size(hp.eps, hp.steps)
        self.train_attack = PGD(
            hp.eps, step, hp.steps, hp.norm, hp.random_start, use_best=hp.use_best
        )
        self.subset_attack = PGD(hp.eps, step, hp.steps, hp.norm, random_start=False)
        self.eval_eps = [hp.eps, *(hp.extra_eval_eps or [])]
        self.eval_attacks = [
            PGD(eps, default_step_size(eps, hp.eval_steps), hp.eval_steps, hp.norm)
            for eps in self.eval_eps
        ]

    def configure_metrics(self) -> None:  # noqa: D102
        super().configure_metrics()
        # metric modules cannot have dots in their names: index them, name them when logging
        self.robust_names = ["robust_acc"] + [
            f"robust_acc_{eps_name(e)}" for e in self.eval_eps[1:]
        ]
        count, classes = len(self.eval_eps), self.hparams.num_classes
        self.val_robust = nn.ModuleList([top_k_accuracy(classes, 1) for _ in range(count)])
        self.test_robust = nn.ModuleList([top_k_accuracy(classes, 1) for _ in range(count)])
        self.val_robust_subset = top_k_accuracy(classes, 1)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """One update on PGD examples of the batch."""
        images, labels = self.to_memory_format(batch[0]), batch[1]
        adversarial = self.train_attack(self.model, images, labels)
        logits = self(adversarial)
        loss = classification_loss(logits, labels, self.hparams.label_smoothing)
        self.train_metrics.update(logits, labels)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        return loss

    def _evaluate(self, batch: Any, stage: str, metrics: MetricCollection, robust) -> None:
        """Clean accuracy, then every eval attack (``eval_steps``, every eps) on the batch."""
        self._shared_step(batch, stage, metrics)
        images, labels = self.to_memory_format(batch[0]), batch[1]
        for attack, metric, name in zip(self.eval_attacks, robust, self.robust_names, strict=True):
            metric.update(self(attack(self.model, images, labels)), labels)
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """The full evaluation (``full_robust_eval``) or clean + the subset estimate."""
        if self.hparams.full_robust_eval:
            self._evaluate(batch, "val", self.val_metrics, self.val_robust)
            return
        self._shared_step(batch, "val", self.val_metrics)
        if batch_idx < self.hparams.robust_subset_batches:
            images, labels = self.to_memory_format(batch[0]), batch[1]
            adversarial = self.subset_attack(self.model, images, labels)
            self.val_robust_subset.update(self(adversarial), labels)
            self.log(
                "val/robust_acc_subset",
                self.val_robust_subset,
                on_step=False,
                on_epoch=True,
                prog_bar=True,
            )

    def test_step(self, batch: Any, batch_idx: int) -> None:  # noqa: D102
        self._evaluate(batch, "test", self.test_metrics, self.test_robust)


__all__ = ["RobustClassifierModule"]
