"""Clean and robust accuracy over a list of eps (PGD, and the standard AutoAttack if installed).

No test compares AutoAttack with PGD: neither is stronger on every example. They check what
holds whatever the attack finds: the rule for counting an example robust, eps 0, the ball
and the [0, 1] box, the one-call bookkeeping, and that the caller's state is left alone.
"""

import sys

import pytest
import torch
from trainers import quiet_trainer

from inversion import InversionError, build_classifier
from inversion.attacks import PGD
from inversion.data.digits import load_digits_split
from inversion.robust_prior import (
    accuracy_over_eps,
    autoattack_images,
    correct_predictions,
    default_step_size,
    robust_acc_key,
    robust_correct,
)
from model_inversion.datamodules import DigitsDataModule
from model_inversion.lightning_modules import RobustClassifierModule


@pytest.fixture(scope="module")
def model():
    return build_classifier("digits:cnn").freeze()


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digits_split("test")
    return images[:32], labels[:32]


def record_attacks(monkeypatch) -> list[tuple[float, int, bool, int]]:
    """Every PGD call from now on, as (eps, steps, random_start, number of images)."""
    calls: list[tuple[float, int, bool, int]] = []
    attack = PGD.__call__

    def recording(self, model, images, *args, **kwargs):
        calls.append((self.eps, self.steps, self.random_start, images.shape[0]))
        return attack(self, model, images, *args, **kwargs)

    monkeypatch.setattr(PGD, "__call__", recording)
    return calls


def test_pgd_accuracy_over_eps_in_one_call(model, digits, monkeypatch):
    images, labels = digits
    calls = record_attacks(monkeypatch)
    results = accuracy_over_eps(model, images, labels, [0.0, 0.5, 1.5], steps=5)
    assert list(results) == ["clean_acc", "robust_acc@0", "robust_acc@0.5", "robust_acc@1.5"]
    # one attack pass per nonzero eps, over all the images, with the evaluation's settings
    assert calls == [(0.5, 5, False, 32), (1.5, 5, False, 32)]
    assert results["robust_acc@0"] == results["clean_acc"] > 0.8
    # by hand: the clean input and the PGD example (5 steps of 2.5 eps / 5) both correct
    clean = model(images).argmax(1) == labels
    for eps in (0.5, 1.5):
        adversarial = PGD(eps, default_step_size(eps, 5), 5, "l2")(model, images, labels)
        robust = clean & (model(adversarial).argmax(1) == labels)
        assert results[robust_acc_key(eps)] == pytest.approx(robust.float().mean().item())
    assert results["robust_acc@1.5"] < results["clean_acc"]  # the standard CNN is not robust


def test_robust_examples_are_classified_correctly_when_clean(model, digits):
    images, labels = digits
    labels = labels.clone()
    labels[:8] = (labels[:8] + 1) % 10  # wrong labels: misclassified whatever the attack
    clean = correct_predictions(model, images, labels)
    assert not clean[:8].any()
    robust = robust_correct(model, images, labels, 0.5, steps=3)
    assert robust.dtype == torch.bool and robust.shape == (32,)
    assert not (robust & ~clean).any()
    assert torch.equal(robust_correct(model, images, labels, 0.0), clean)
    batched = robust_correct(model, images, labels, 0.5, steps=3, batch_size=5)
    assert batched.shape == (32,) and not (batched & ~clean).any()


def test_bad_evaluation_settings_are_one_clear_error(model, digits):
    images, labels = digits
    with pytest.raises(InversionError, match="eps must be 0 or more"):
        accuracy_over_eps(model, images, labels, [0.5, -1.0])
    with pytest.raises(InversionError, match="Unknown evaluation attack"):
        accuracy_over_eps(model, images, labels, [0.5], attack="fgsm")
    with pytest.raises(InversionError, match="norm"):
        accuracy_over_eps(model, images, labels, [0.5], norm="l3")


def test_missing_autoattack_is_one_error_naming_the_install(model, digits, monkeypatch):
    images, labels = digits
    monkeypatch.setitem(sys.modules, "pyautoattack", None)  # import fails as if not installed
    with pytest.raises(InversionError, match=r'pip install "model-inversion\[autoattack\]"'):
        accuracy_over_eps(model, images, labels, [0.5], attack="autoattack")


@pytest.mark.parametrize(("norm", "eps"), [("l2", 1.5), ("linf", 0.3)])
def test_autoattack_examples_lie_in_the_ball_and_leave_the_caller_alone(model, digits, norm, eps):
    pytest.importorskip("pyautoattack")
    images, labels = digits[0][:16], digits[1][:16].clone()
    labels[0] = (labels[0] + 1) % 10  # misclassified: returned unattacked
    before = images.clone()
    model.train()  # the attack runs in eval mode and puts the model back as it was
    torch.manual_seed(123)
    state = torch.get_rng_state()
    try:
        adversarial = autoattack_images(model, images, labels, eps, norm)
    finally:
        model.eval()
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(images, before)
    assert adversarial.shape == images.shape and adversarial.dtype == images.dtype
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    delta = (adversarial - images).flatten(1)
    size = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)
    assert (size <= eps * (1 + 1e-5)).all()
    assert torch.equal(adversarial[0], images[0])
    # every example AutoAttack counts broken is misclassified at its adversarial example
    clean = correct_predictions(model, images, labels)
    fooled = ~correct_predictions(model, adversarial, labels)
    assert fooled[clean].any()  # the standard CNN at this eps
    changed = (adversarial != images).flatten(1).any(dim=1)
    assert not (changed & ~fooled).any()


def test_autoattack_accuracy_over_eps(model, digits):
    pytest.importorskip("pyautoattack")
    images, labels = digits[0][:12], digits[1][:12]
    results = accuracy_over_eps(model, images, labels, [0.0, 2.0], attack="autoattack")
    assert list(results) == ["clean_acc", "robust_acc@0", "robust_acc@2"]
    assert results["robust_acc@0"] == results["clean_acc"] > 0.8
    assert results["robust_acc@2"] < results["clean_acc"]


def test_module_logs_robust_accuracy_at_every_eval_eps_under_the_fields_names(monkeypatch):
    # eps 1.0 is both the training eps and in eval_eps, 0.5 in both lists: each attacked once
    calls = record_attacks(monkeypatch)
    module = RobustClassifierModule(
        classifier="digits:cnn",
        pretrained=True,
        eps=1.0,
        eval_steps=3,
        extra_eval_eps=[0.5],
        eval_eps=[0.0, 0.5, 1.0],
    )
    datamodule = DigitsDataModule(batch_size=24)
    results = quiet_trainer(limit_test_batches=2).test(module, datamodule=datamodule)[0]
    assert sorted(calls) == sorted([(1.0, 3, False, 24), (0.5, 3, False, 24)] * 2)
    names = ["robust_acc", "robust_acc_eps0.5", "robust_acc@0", "robust_acc@0.5", "robust_acc@1"]
    assert {f"test/{name}" for name in names} <= set(results)
    assert "test/robust_acc_autoattack" not in results
    assert results["test/robust_acc@1"] == results["test/robust_acc"]
    assert results["test/robust_acc@0.5"] == results["test/robust_acc_eps0.5"]
    assert results["test/robust_acc@0"] == pytest.approx(results["test/acc"], abs=1e-6)
    # the same numbers as the one-call function on those 48 test digits
    images, labels = load_digits_split("test")
    model = build_classifier("digits:cnn").freeze()
    expected = accuracy_over_eps(model, images[:48], labels[:48], [0.5, 1.0], steps=3)
    for eps in (0.5, 1.0):
        key = robust_acc_key(eps)
        assert results[f"test/{key}"] == pytest.approx(expected[key], abs=1e-6)
    with pytest.raises(InversionError, match="eps must be 0 or more"):
        RobustClassifierModule(eval_eps=[-0.5])


def test_module_autoattack_option(monkeypatch):
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "pyautoattack", None)
        with pytest.raises(InversionError, match=r"pip install"):
            RobustClassifierModule(autoattack=True)
    pytest.importorskip("pyautoattack")
    module = RobustClassifierModule(
        classifier="digits:cnn", pretrained=True, eps=2.0, eval_steps=3, autoattack=True
    )
    datamodule = DigitsDataModule(batch_size=12)
    results = quiet_trainer(limit_val_batches=1).validate(module, datamodule=datamodule)[0]
    assert "val/robust_acc_autoattack" not in results  # test only
    results = quiet_trainer(limit_test_batches=1).test(module, datamodule=datamodule)[0]
    images, labels = load_digits_split("test")
    model = build_classifier("digits:cnn").freeze()
    expected = accuracy_over_eps(model, images[:12], labels[:12], [2.0], attack="autoattack")
    assert results["test/robust_acc_autoattack"] == pytest.approx(expected["robust_acc@2"])
    assert results["test/robust_acc_autoattack"] <= results["test/acc"]
