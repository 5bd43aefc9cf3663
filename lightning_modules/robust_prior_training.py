"""Adversarial training with PGD (Madry et al.; the robustness library's recipe)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torchmetrics import MetricCollection

from inversion.attacks import PGD, Norm
from inversion.metrics.scorer import top_k_accuracy
from inversion.robust_prior import default_step_size, eps_name
from inversion.training import OptimizerName, classification_loss
from lightning_modules.classifier import ClassifierModule


class RobustClassifierModule(ClassifierModule):
    """Train a classifier on PGD adversarial examples; report clean and robust accuracy.

    Each training batch is replaced by PGD examples made against the current model (in
    eval mode during the attack, as in the robustness library) before the usual update;
    ``train/acc`` is the accuracy on those examples. Validation and test report the
    clean accuracy (``acc``) and the accuracy under a stronger PGD (``robust_acc``:
    ``eval_steps`` steps at the training eps, no random start, best iterate), and
    ``robust_acc_eps<e>`` for every extra eps in ``extra_eval_eps``. The attack needs
    gradients, so it runs inside Lightning's inference mode with its own grad mode.
    Its checkpoints are classifier specs like :class:`ClassifierModule`'s.

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
        eval_steps: PGD steps of the robust evaluation.
        extra_eval_eps: More eps at which validation/test measure robust accuracy.
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
        **classifier_args: Any,
    ) -> None:
        super().__init__(optimizer=optimizer, lr=lr, weight_decay=weight_decay, **classifier_args)

    def configure_losses(self) -> None:
        """The attacks (built here so that bad settings fail before any work)."""
        hp = self.hparams
        step = hp.step_size if hp.step_size is not None else default_step_size(hp.eps, hp.steps)
        self.train_attack = PGD(
            hp.eps, step, hp.steps, hp.norm, hp.random_start, use_best=hp.use_best
        )
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
        self._shared_step(batch, stage, metrics)
        images, labels = self.to_memory_format(batch[0]), batch[1]
        for attack, metric, name in zip(self.eval_attacks, robust, self.robust_names, strict=True):
            metric.update(self(attack(self.model, images, labels)), labels)
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:  # noqa: D102
        self._evaluate(batch, "val", self.val_metrics, self.val_robust)

    def test_step(self, batch: Any, batch_idx: int) -> None:  # noqa: D102
        self._evaluate(batch, "test", self.test_metrics, self.test_robust)


__all__ = ["RobustClassifierModule"]
