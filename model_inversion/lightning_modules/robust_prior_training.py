"""Adversarial training with PGD (Madry et al.; the robustness library's recipe)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection

from inversion.attacks import PGD, Norm
from inversion.errors import InversionError
from inversion.metrics.scorer import top_k_accuracy
from inversion.robust_prior import (
    correct_predictions,
    default_step_size,
    eps_name,
    require_autoattack,
    robust_acc_key,
    robust_correct,
)
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
    evaluation that test always reports, on every batch: PGD with ``eval_steps`` steps, no
    random start, best iterate (:func:`inversion.robust_prior.eval_pgd`), once per eps, logged
    as ``robust_acc`` at the training eps, ``robust_acc_eps<e>`` for every eps in
    ``extra_eval_eps`` and ``robust_acc@<e>`` for every eps in ``eval_eps`` (an eps named
    twice is attacked once). An example counts as robust when its clean input and its
    adversarial example are both classified correctly
    (:func:`inversion.robust_prior.robust_correct`). With ``autoattack`` test also reports
    ``robust_acc_autoattack``: the standard AutoAttack at the training eps and norm
    (:func:`inversion.robust_prior.autoattack_images`; the optional extra
    ``pip install "model-inversion[autoattack]"``). The attacks need gradients, so they run
    inside Lightning's inference mode with their own grad mode. Checkpoints are classifier
    specs like :class:`ClassifierModule`'s.

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
        extra_eval_eps: More eps at which the full evaluation measures robust accuracy,
            logged as ``robust_acc_eps<e>``.
        eval_eps: Eps at which the full evaluation measures robust accuracy, logged as
            ``robust_acc@<e>`` (the field's name; 0 gives the clean accuracy).
        autoattack: Test also reports ``robust_acc_autoattack`` (standard AutoAttack at
            ``eps``; slow: thousands of model calls per image that resists).
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
        eval_eps: list[float] | None = None,
        autoattack: bool = False,
        full_robust_eval: bool = False,
        robust_subset_batches: int = 2,
        **classifier_args: Any,
    ) -> None:
        if robust_subset_batches < 0:
            raise InversionError(
                f"robust_subset_batches must be 0 or more, got {robust_subset_batches}."
            )
        if any(e < 0 for e in [*(extra_eval_eps or []), *(eval_eps or [])]):
            raise InversionError(
                f"Evaluation eps must be 0 or more, got {extra_eval_eps=}, {eval_eps=}."
            )
        if autoattack:
            require_autoattack()  # one clear error naming the install, before any work
        super().__init__(optimizer=optimizer, lr=lr, weight_decay=weight_decay, **classifier_args)

    def configure_losses(self) -> None:
        """The attacks (built here so that bad settings fail before any work)."""
        hp = self.hparams
        step = hp.step_size if hp.step_size is not None else default_step_size(hp.eps, hp.steps)
        self.train_attack = PGD(
            hp.eps, step, hp.steps, hp.norm, hp.random_start, use_best=hp.use_best
        )
        self.subset_attack = PGD(hp.eps, step, hp.steps, hp.norm, random_start=False)
        # each distinct eps (robust_eps) is attacked once per batch; its metrics, named as asked
        named = [(hp.eps, "robust_acc")]
        named += [(e, f"robust_acc_{eps_name(e)}") for e in hp.extra_eval_eps or []]
        named += [(e, robust_acc_key(e)) for e in hp.eval_eps or []]
        named = list(dict.fromkeys(named))  # an eps listed twice is logged once
        self.robust_eps = list(dict.fromkeys(e for e, _ in named))
        self.robust_names = [name for _, name in named]
        self.robust_eps_index = [self.robust_eps.index(e) for e, _ in named]

    def configure_metrics(self) -> None:  # noqa: D102
        super().configure_metrics()
        # metric modules cannot have dots in their names: index them, name them when logging
        count, classes = len(self.robust_names), self.hparams.num_classes
        self.val_robust = nn.ModuleList([MeanMetric() for _ in range(count)])
        self.test_robust = nn.ModuleList([MeanMetric() for _ in range(count)])
        self.test_autoattack = MeanMetric()
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
        hp = self.hparams
        clean = correct_predictions(self.model, images, labels)
        robust_by_eps = [
            robust_correct(
                self.model, images, labels, e, "pgd", hp.norm, hp.eval_steps, clean_correct=clean
            )
            for e in self.robust_eps
        ]
        for index, metric, name in zip(
            self.robust_eps_index, robust, self.robust_names, strict=True
        ):
            metric.update(robust_by_eps[index].float())
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=True)
        if stage == "test" and hp.autoattack:
            resists = robust_correct(
                self.model, images, labels, hp.eps, "autoattack", hp.norm, clean_correct=clean
            )
            self.test_autoattack.update(resists.float())
            self.log(
                "test/robust_acc_autoattack", self.test_autoattack, on_step=False, on_epoch=True
            )

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
