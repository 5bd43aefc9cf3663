"""Property tests of PGD, and agreement with Foolbox 3 (an independent implementation)."""

import foolbox
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inversion import InversionError, build_classifier
from inversion.attacks import PGD, cross_entropy_per_example, pgd
from inversion.data.digits import load_digits_split

SETTINGS = {"linf": dict(eps=0.1, step_size=0.02), "l2": dict(eps=1.0, step_size=0.25)}


@pytest.fixture(scope="module")
def cnn():
    return build_classifier("digits:cnn").freeze()


@pytest.fixture(scope="module")
def batch():
    images, labels = load_digits_split("test")
    return images[:48], labels[:48]


def delta_norms(adv, images, norm):
    delta = (adv - images).flatten(1)
    return delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("random_start", [False, True])
def test_perturbation_stays_in_the_ball_and_the_box(cnn, batch, norm, random_start):
    images, labels = batch
    attack = PGD(**SETTINGS[norm], steps=8, norm=norm, random_start=random_start)
    adv = attack(cnn, images, labels, generator=torch.Generator().manual_seed(0))
    assert (delta_norms(adv, images, norm) <= SETTINGS[norm]["eps"] + 1e-5).all()
    assert adv.min() >= 0 and adv.max() <= 1
    assert (cnn(adv).argmax(1) == labels).float().mean() < (
        cnn(images).argmax(1) == labels
    ).float().mean()


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("zero", ["eps", "step_size", "steps"])
def test_nothing_to_do_returns_the_input(cnn, batch, norm, zero):
    images, labels = batch
    settings = {**SETTINGS[norm], "steps": 5, zero: 0}
    adv = PGD(**settings, norm=norm)(cnn, images, labels)
    assert torch.equal(adv, images)
    assert adv.data_ptr() != images.data_ptr()


def test_random_starts_lie_on_the_sphere_or_in_the_ball():
    generator = torch.Generator().manual_seed(0)
    gray = torch.full((200, 1, 16, 16), 0.5)  # far from the box edges: no clamping
    sphere = PGD(eps=1.0, step_size=0.1, steps=1, norm="l2").random_point(gray, generator)
    torch.testing.assert_close(delta_norms(sphere, gray, "l2"), torch.full((200,), 1.0))
    box = PGD(eps=0.1, step_size=0.1, steps=1, norm="linf").random_point(gray, generator)
    assert (delta_norms(box, gray, "linf") <= 0.1 + 1e-7).all()
    assert (box - gray).abs().flatten(1).amax(1).min() > 0.09  # uniform fills the box
    # uniform in a 4-dimensional ball: P(radius <= r) = r^4
    small = torch.full((4000, 1, 2, 2), 0.5)
    ball = PGD(eps=0.4, step_size=0.1, steps=1, norm="l2", l2_start="ball")
    radii = delta_norms(ball.random_point(small, generator), small, "l2") / 0.4
    assert radii.max() <= 1 + 1e-6
    for r in (0.5, 0.8):
        assert (radii <= r).float().mean().item() == pytest.approx(r**4, abs=0.03)


def test_targeted_lowers_the_target_loss(cnn, batch):
    images, labels = batch
    targets = (labels + 3) % 10
    before = cross_entropy_per_example(cnn, images, targets)
    adv = pgd(cnn, images, targets, **SETTINGS["l2"], steps=10, targeted=True)
    after = cross_entropy_per_example(cnn, adv, targets)
    assert (after <= before + 1e-6).all()  # use_best keeps the start if nothing is better
    assert after.mean() < 0.5 * before.mean()
    assert (cnn(adv).argmax(1) == targets).float().mean() > 0.5


@pytest.mark.parametrize("targeted", [False, True])
def test_use_best_is_never_worse_than_the_last_iterate(cnn, batch, targeted):
    images, labels = batch
    targets = (labels + 1) % 10 if targeted else labels
    attack = dict(**SETTINGS["l2"], steps=6, norm="l2", random_start=True)
    generator = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    best = PGD(**attack, use_best=True)(
        cnn, images, targets, targeted=targeted, generator=generator()
    )
    last = PGD(**attack, use_best=False)(
        cnn, images, targets, targeted=targeted, generator=generator()
    )
    sign = -1 if targeted else 1
    best_score = sign * cross_entropy_per_example(cnn, best, targets)
    last_score = sign * cross_entropy_per_example(cnn, last, targets)
    assert (best_score >= last_score - 1e-6).all()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_examples_do_not_interact(batch, norm):
    """Attacking a batch or its halves gives the same images (eval-mode model, summed loss)."""
    model = build_classifier("digits:mlp").freeze()  # smooth: no tie-breaking chaos
    images, labels = batch
    attack = PGD(**SETTINGS[norm], steps=10, norm=norm)
    whole = attack(model, images, labels)
    halves = torch.cat(
        [attack(model, images[:20], labels[:20]), attack(model, images[20:], labels[20:])]
    )
    torch.testing.assert_close(whole, halves, atol=1e-5, rtol=0)


def test_input_and_model_are_left_as_they_were(batch):
    images, labels = batch
    images = images.clone().requires_grad_(True)
    copy = images.detach().clone()
    model = build_classifier("digits:cnn", pretrained=False).train()
    modes = []
    model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    adv = PGD(**SETTINGS["linf"], steps=3, norm="linf", random_start=True)(model, images, labels)
    assert torch.equal(images.detach(), copy) and images.requires_grad and images.grad is None
    assert not adv.requires_grad
    assert modes and not any(modes)  # eval mode during the attack (batch norm statistics fixed)
    assert model.training  # and train mode again afterwards
    assert all(p.grad is None for p in model.parameters())  # gradients w.r.t. the input only


def test_attack_works_inside_inference_mode(cnn, batch):
    images, labels = batch
    expected = pgd(cnn, images, labels, **SETTINGS["l2"], steps=4)
    with torch.inference_mode():
        inside = pgd(cnn, images.clone(), labels, **SETTINGS["l2"], steps=4)
    torch.testing.assert_close(inside.clone(), expected)


def test_custom_loss_drives_a_feature(cnn, batch):
    images, _ = batch

    def feature(model, x, index):
        return model.penultimate(x)[:, index]

    before = feature(cnn, images, 5)
    after = feature(cnn, pgd(cnn, images, 5, eps=2.0, step_size=0.5, steps=10, loss_fn=feature), 5)
    assert (after > before).all()


def test_bad_settings_are_clear_errors():
    with pytest.raises(InversionError, match="norm"):
        PGD(eps=1, step_size=1, steps=1, norm="l1")
    with pytest.raises(InversionError, match="start"):
        PGD(eps=1, step_size=1, steps=1, l2_start="cube")
    with pytest.raises(InversionError, match=">= 0"):
        PGD(eps=-1, step_size=1, steps=1)


# --- agreement with Foolbox 3 ---------------------------------------------------------------
# Foolbox's L2/LinfPGD (random start off, last iterate, summed cross-entropy) is the same
# algorithm. Long L2 trajectories are chaotic: ties in max pooling and ReLU on upsampled
# digits, and the unit-normalised gradients of very confident examples, turn rounding
# differences of 1e-7 into different steps (digits:cnn separates after 5-10 L2 steps on
# some CPUs and not others; the ViT after ~15, in float64 too). Sign steps (L-inf) and the
# smooth ResMLP are immune and are compared over 20 steps; the ViT over 5 L2 steps.
FOOLBOX_CASES = [
    ("digits:cnn", "linf", 20),
    ("digits:resnet", "linf", 20),
    ("digits:mlp", "l2", 20),
    ("digits:vit", "l2", 5),
]


@pytest.mark.parametrize(("spec", "norm", "steps"), FOOLBOX_CASES)
def test_agrees_with_foolbox(batch, spec, norm, steps):
    images, labels = batch
    model = build_classifier(spec).freeze()
    settings = SETTINGS[norm]
    ours = PGD(**settings, steps=steps, norm=norm, use_best=False)(model, images, labels)
    attack_class = foolbox.attacks.LinfPGD if norm == "linf" else foolbox.attacks.L2PGD
    attack = attack_class(abs_stepsize=settings["step_size"], steps=steps, random_start=False)
    _, theirs, _ = attack(
        foolbox.PyTorchModel(model, bounds=(0, 1)), images, labels, epsilons=settings["eps"]
    )
    assert (ours - theirs).abs().max() < 1e-5
    assert not torch.equal(ours, images)


def test_cross_entropy_default_matches_torch(cnn, batch):
    images, labels = batch
    torch.testing.assert_close(
        cross_entropy_per_example(cnn, images, labels),
        F.cross_entropy(cnn(images), labels, reduction="none"),
    )


def test_bf16_autocast_attack_stays_valid(batch):
    model = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 10))
    images, labels = batch
    with torch.autocast("cpu", dtype=torch.bfloat16):
        adv = pgd(model, images, labels, **SETTINGS["l2"], steps=3)
    assert adv.dtype == torch.float32
    assert (delta_norms(adv, images, "l2") <= 1.0 + 1e-5).all()
