import lightning.pytorch as pl
import pytest
import torch

from inversion import InversionError, build_classifier
from inversion.data.digits import load_digits_split
from inversion.robust_prior import (
    chosen_features,
    gray_seeds,
    interpolate_representations,
    invert_representation,
    representation,
    representation_distance,
    tool_attack,
    top_features,
    visualize_features,
)
from model_inversion.callbacks import ImageGrid, ImageMetrics
from model_inversion.datamodules import DigitsDataModule, NoiseDataModule
from model_inversion.lightning_modules import RepresentationTools


@pytest.fixture(scope="module")
def cnn():
    return build_classifier("digits:cnn").freeze()


@pytest.fixture(scope="module")
def digits():
    images, labels = load_digits_split("test")
    return images[:12], labels[:12]


def test_gray_seeds_are_gray_with_a_little_noise():
    seeds = gray_seeds((500, 1, 8, 8), torch.Generator().manual_seed(0))
    assert seeds.mean().item() == pytest.approx(0.5, abs=0.01)
    assert seeds.std().item() == pytest.approx(0.05, abs=0.005)


def test_inversion_reduces_the_representation_distance(cnn, digits):
    images, _ = digits
    targets = representation(cnn, images)
    seeds = gray_seeds(images.shape, torch.Generator().manual_seed(0))
    inverted = invert_representation(cnn, targets, seeds, tool_attack(0.1, 40))
    before = representation_distance(cnn, seeds, targets)
    after = representation_distance(cnn, inverted, targets)
    assert (after < before).all() and after.mean() < 0.5 * before.mean()
    assert inverted.min() >= 0 and inverted.max() <= 1


def _component_and_gradient(model, images, features):
    """The component visualize_features ascends (forward values as under its fake ReLU) and
    the norm of its true gradient with respect to each image."""
    images = images.clone().requires_grad_(True)
    with torch.enable_grad():
        values = representation(model, images)[torch.arange(len(images)), features]
        (grad,) = torch.autograd.grad(values.sum(), [images])
    return values.detach(), grad.flatten(1).norm(dim=1)


def test_visualisation_raises_the_chosen_component(cnn, digits):
    # What the method guarantees: PGD with use_best returns, per image, the iterate where the
    # component (the ReLU'd value; the fake ReLU changes gradients only) is highest, the seed
    # included, so it never decreases; and gradient ascent raises it wherever its gradient at
    # the seed is non-zero. A unit that is dead at the seed (zero gradient) may stay at 0: the
    # straight-through steps raise its pre-activation, which need not cross 0 in a few steps.
    images, _ = digits
    seeds = gray_seeds(images.shape, torch.Generator().manual_seed(0))
    for features in (top_features(cnn, images), top_features(cnn, seeds)):
        visual = visualize_features(cnn, features, seeds, tool_attack(0.1, 20))
        before, gradient = _component_and_gradient(cnn, seeds, features)
        after, _ = _component_and_gradient(cnn, visual, features)
        assert (after >= before - 1e-6 * before.abs().clamp_min(1)).all()
        alive = gradient > 0
        assert alive.any()  # the seed's own top components are alive: never vacuous
        assert (after[alive] > before[alive]).all()
        assert visual.min() >= 0 and visual.max() <= 1


def test_interpolation_ends_match_their_images(cnn, digits):
    images, _ = digits
    first, second = images[:3], images[3:6]
    seeds = gray_seeds(first.shape, torch.Generator().manual_seed(0))
    rows = interpolate_representations(cnn, first, second, [0.0, 1.0], seeds, tool_attack(0.1, 100))
    assert rows.shape == (3, 2, 1, 32, 32)
    for end, near, far in ((0, first, second), (1, second, first)):
        to_near = representation_distance(cnn, rows[:, end], representation(cnn, near))
        to_far = representation_distance(cnn, rows[:, end], representation(cnn, far))
        assert (to_near < to_far).all()


def _test(module: RepresentationTools, datamodule, callbacks=(), batches: int = 1):
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        callbacks=list(callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_test_batches=batches,
    )
    return trainer, trainer.test(module, datamodule=datamodule)[0]


@pytest.mark.parametrize("tool", ["invert", "visualize", "manipulate", "interpolate"])
def test_every_tool_returns_images_for_the_callbacks(tool):
    outputs = []

    class Keep(pl.Callback):
        def on_test_batch_end(self, trainer, pl_module, out, batch, batch_idx, dataloader_idx=0):
            outputs.append(out)

    module = RepresentationTools(classifier="digits:cnn", tool=tool, steps=3, alphas=[0, 0.5, 1])
    _test(module, DigitsDataModule(batch_size=6), [Keep()])
    (out,) = outputs
    expected = {
        "invert": {"images", "labels", "originals"},
        "visualize": {"images", "labels"},
        "manipulate": {"images", "labels", "originals"},
        "interpolate": {"images"},
    }[tool]
    assert set(out) == expected
    assert out["images"].shape == ((30 if tool == "interpolate" else 6), 1, 32, 32)
    assert out["images"].min() >= 0 and out["images"].max() <= 1


def test_inversion_is_scored_against_its_originals():
    metrics = ImageMetrics(verifiers=["digits:mlp"], feature=None)
    module = RepresentationTools(classifier="digits:cnn", tool="invert", steps=30)
    _, results = _test(
        module, DigitsDataModule(batch_size=20), [metrics, ImageGrid(save_png=False)]
    )
    assert {"repr_distance", "agree_target"} <= set(results)
    assert 0 <= results["agree_target"] <= 1
    scored = metrics.results["test"]
    assert scored["images"] == 20 and {"psnr", "ssim", "agree_digits-mlp"} <= set(scored)


def test_unlabelled_data_gives_unlabelled_outputs():
    module = RepresentationTools(classifier="digits:cnn", tool="visualize", steps=2)
    outputs = module._step([torch.rand(4, 1, 32, 32), torch.full((4,), -1)], 0)
    assert set(outputs) == {"images"}
    trainer, _ = _test(module, NoiseDataModule(num_val_samples=4, batch_size=4))
    assert trainer.state.finished


def test_same_seed_same_images_and_chosen_features_are_used():
    images = load_digits_split("test")[0][:4]
    make = lambda: RepresentationTools(  # noqa: E731
        classifier="digits:cnn", tool="visualize", steps=3, features=[7, 9]
    )
    first, second = make(), make()
    a = first._step([images, torch.arange(4)], 0)
    b = second._step([images, torch.arange(4)], 0)
    assert torch.equal(a["images"], b["images"]) and "labels" not in a
    layer = first.hparams.layer
    assert chosen_features(first.classifier, images, layer, [7, 9]).tolist() == [7, 9, 7, 9]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tool": "dream"}, "Unknown tool"),
        ({"seed_image": "white"}, "Unknown seed_image"),
        ({"layer": "stage9"}, "No layer named 'stage9'"),
        ({"tool": "visualize", "features": [500]}, "outside 0..127"),
    ],
)
def test_bad_options_are_one_clear_error(options, message):
    with pytest.raises(InversionError, match=message):
        RepresentationTools(classifier="digits:cnn", **options)


def test_fake_relu_passes_gradients_but_not_values():
    from torch import nn

    from inversion.robust_prior import fake_last_relu

    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU(inplace=True), nn.Linear(3, 2), nn.ReLU())
    x = torch.randn(5, 3, requires_grad=True)
    with fake_last_relu(net):
        out = net(x)
    torch.testing.assert_close(out, net(x))
    (grad,) = torch.autograd.grad(out.sum(), x)
    (plain,) = torch.autograd.grad(net[:3](x).sum(), x)  # the last ReLU as the identity
    torch.testing.assert_close(grad, plain)
