"""Class inversion does what the authors' code does by default; each departure is an option.

References: NVlabs/DeepInversion (``deepinversion.py``) and the PII authors' repository
(``experiment/iteration20/pii.py``, ``model/``); the options are listed in
docs/class_inversion.md.
"""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

import inversion.class_inversion.inverter as inverter_module
from inversion import InversionError, build_classifier
from inversion.class_inversion import ClassInverter, build_stages, recipe_from
from inversion.class_inversion.augment import jitter_for_size
from inversion.models import ImageClassifier
from inversion.priors import total_variation_l2

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
LABELS = torch.tensor([1, 4, 7])


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def cnn() -> ImageClassifier:
    return build_classifier("digits:cnn").freeze()


def tiny_rgb_classifier(mean=(0.2, 0.5, 0.7), std=(0.25, 0.5, 0.1)) -> ImageClassifier:
    """A 3-channel classifier with its own normalisation statistics (any size input)."""
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)
    )
    model = ImageClassifier(
        net, name="tiny", num_classes=10, in_chans=3, input_size=(16, 16), mean=mean, std=std
    )
    return model.freeze()


def test_named_recipes_default_to_the_reference_behaviour():
    pii, di, dd = (recipe_from(n) for n in ("pii", "deepinversion", "deepdream"))
    assert (pii.jitter, pii.jitter_scale, pii.zoom_to_native, pii.iterate) == (
        32,
        "native",
        False,
        "last",
    )
    assert not pii.flip and pii.tv_l2 == pii.l2 == 0
    for recipe in (di, dd):
        assert (recipe.prior_space, recipe.iterate, recipe.init) == (
            "normalised",
            "best",
            "normalised_gaussian",
        )
        assert recipe.flip and recipe.competition_form == "clamped"
        assert (recipe.tv_l2, recipe.l2, recipe.jitter) == (1e-4, 1e-5, 30)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prior_space", "pixels"),
        ("iterate", "first"),
        ("jitter_scale", "canvas"),
        ("competition_form", "js"),
        ("init", "normal"),
    ],
)
def test_each_choice_is_checked_and_lists_its_choices(field, value):
    with pytest.raises(InversionError, match=f"Unknown {field} '{value}'; choose one of"):
        recipe_from("deepinversion", {field: value})


# --- DeepInversion's priors on the normalised (and pooled) image --------------------------


def _prior_descent(model: ImageClassifier, prior_space: str) -> torch.Tensor:
    """Minimise the L2 prior alone (through the inverter's loss) from random images."""
    recipe = recipe_from("custom", {"l2": 1.0, "prior_space": prior_space})
    inverter = ClassInverter(model, recipe, 8, 3, seeded(0))
    images = torch.rand(2, 3, 8, 8, generator=seeded(1), requires_grad=True)
    optimizer = torch.optim.Adam([images], lr=0.02)
    for _ in range(400):
        optimizer.zero_grad()
        inverter.loss(images, torch.tensor([0, 1]), 1)[1]["l2"].backward()
        optimizer.step()
    return images.detach()


def test_the_l2_prior_pulls_to_the_data_mean_by_default_and_to_black_in_pixel_space():
    model = tiny_rgb_classifier()
    mean = torch.tensor([0.2, 0.5, 0.7]).view(1, 3, 1, 1)
    default = _prior_descent(model, "normalised")
    assert (default - mean).abs().max() < 0.03  # each channel at its own mean
    pixel = _prior_descent(model, "pixel")
    assert pixel.abs().max() < 0.03


def test_tv_acts_on_the_normalised_image_and_on_the_pooled_image_at_half_resolution():
    model = tiny_rgb_classifier(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    options = {"tv_l2": 1.0, "jitter": 0, "flip": False, "bn": 0.0}
    images = torch.rand(2, 3, 16, 16, generator=seeded(2))
    labels = torch.tensor([0, 1])
    normalised = ClassInverter(model, recipe_from("deepdream", options), 16, 3, seeded(0))
    pixel = ClassInverter(
        model, recipe_from("deepdream", {**options, "prior_space": "pixel"}), 16, 3, seeded(0)
    )
    full = normalised.loss(images, labels, 1)[1]["tv_l2"]
    torch.testing.assert_close(full, total_variation_l2(images) / 0.25)  # std 0.25
    torch.testing.assert_close(pixel.loss(images, labels, 1)[1]["tv_l2"] * 4, full)
    pooled = normalised.loss(images, labels, 2)[1]["tv_l2"]
    torch.testing.assert_close(pooled, total_variation_l2(F.avg_pool2d(images, 2)) / 0.25)


def test_normalised_gaussian_init_is_centred_on_the_data_mean():
    model = tiny_rgb_classifier()
    inverter = ClassInverter(
        model, recipe_from("custom", {"init": "normalised_gaussian"}), 64, 3, seeded(0)
    )
    inverter.start(torch.zeros(16, dtype=torch.long))
    images = inverter.images
    assert images is not None and images.min() >= 0 and images.max() <= 1
    medians = images.transpose(0, 1).flatten(1).median(dim=1).values
    torch.testing.assert_close(medians, torch.tensor([0.2, 0.5, 0.7]), atol=0.02, rtol=0)


# --- the best iterate -------------------------------------------------------------------


def _run_recording(inverter: ClassInverter, labels: torch.Tensor):
    """Run to the end; the images each step's loss was computed on, and that loss."""
    inverter.start(labels)
    images, losses = [], []
    while not inverter.finished:
        assert inverter.images is not None
        before = inverter.images.detach().clone()
        losses.append(float(inverter.step()["loss"]))
        images.append(before)
    return images, losses


SHORT_DD = {"low_res_steps": 6, "steps_per_stage": 6, "warmup_steps": 0, "lr": 0.2}


def test_best_iterate_returns_the_images_with_the_lowest_recorded_loss(cnn):
    recipe = recipe_from("deepdream", SHORT_DD)
    inverter = ClassInverter(cnn, recipe, 32, 1, seeded(3))
    images, losses = _run_recording(inverter, LABELS)
    best = min(range(len(losses)), key=losses.__getitem__)
    torch.testing.assert_close(inverter.result(), images[best], rtol=0, atol=0)
    assert inverter.best_loss is not None and float(inverter.best_loss) == pytest.approx(
        losses[best]
    )
    # "last" returns the final iterate, which no recorded loss belongs to
    last = ClassInverter(cnn, recipe_from("deepdream", {**SHORT_DD, "iterate": "last"}), 32, 1)
    last.invert(LABELS)
    assert last.images is not None
    torch.testing.assert_close(last.result(), last.images.detach(), rtol=0, atol=0)


def test_best_iterate_survives_a_checkpoint(cnn):
    recipe = recipe_from("deepinversion", SHORT_DD)

    def fresh() -> ClassInverter:
        return ClassInverter(cnn, recipe, 32, 1, seeded(5))

    full = fresh().invert(LABELS)
    first = fresh()
    first.start(LABELS)
    for _ in range(8):  # inside the full-resolution stage
        first.step()
    second = fresh()
    second.load_state_dict(first.state_dict(), torch.device("cpu"))
    while not second.finished:
        second.step()
    torch.testing.assert_close(second.result(), full, rtol=0, atol=0)


def test_a_nan_loss_is_never_the_best(cnn):
    inverter = ClassInverter(cnn, recipe_from("deepdream", SHORT_DD), 32, 1, seeded(0))
    inverter.start(LABELS)
    assert inverter.images is not None
    inverter._keep_if_best(inverter.images, torch.tensor(float("nan")))
    assert inverter.best_loss is not None and float(inverter.best_loss) == float("inf")
    inverter._keep_if_best(inverter.images * 0.5, torch.tensor(3.0))
    inverter._keep_if_best(inverter.images, torch.tensor(float("nan")))
    torch.testing.assert_close(inverter.result(), inverter.images.detach() * 0.5)


# --- PII: constant jitter, the small canvas for CNNs -------------------------------------


def _record_jitter(monkeypatch, inverter: ClassInverter) -> list[tuple[int, int]]:
    """(canvas size, largest shift) of every jitter call during a whole run."""
    calls: list[tuple[int, int]] = []
    original = inverter_module.circular_jitter

    def recording(images, max_shift, generator=None):
        calls.append((images.shape[-1], max_shift))
        return original(images, max_shift, generator)

    monkeypatch.setattr(inverter_module, "circular_jitter", recording)
    inverter.invert(LABELS)
    return calls


def test_pii_jitter_is_the_same_at_every_zoom_stage(monkeypatch, cnn):
    options = {"steps_per_stage": 1, "ensemble": 1}
    inverter = ClassInverter(cnn, recipe_from("pii", options), 32, 1, seeded(0))
    calls = _record_jitter(monkeypatch, inverter)
    sizes = [stage.size for stage in build_stages(inverter.recipe, 32)]
    assert [size for size, _ in calls] == sizes == [8, 12, 16, 20, 24, 28, 32]
    assert {shift for _, shift in calls} == {jitter_for_size(32, 32)} == {5}
    staged = recipe_from("pii", {**options, "jitter_scale": "stage"})
    calls = _record_jitter(monkeypatch, ClassInverter(cnn, staged, 32, 1, seeded(0)))
    assert [shift for _, shift in calls] == [jitter_for_size(size) for size in sizes]
    assert calls[0][1] < calls[-1][1]


def test_deepinversion_jitter_is_halved_on_the_pooled_image(monkeypatch, cnn):
    options = {"low_res_steps": 1, "steps_per_stage": 1, "jitter": 64}  # 9 px at 32
    inverter = ClassInverter(cnn, recipe_from("deepdream", options), 32, 1, seeded(0))
    assert _record_jitter(monkeypatch, inverter) == [(16, 4), (32, 9)]


def _input_sizes(model: nn.Module, recipe_options: dict, spec_model) -> list[int]:
    """The side of every input that ``model`` receives during a short PII run."""
    sizes: list[int] = []
    handle = model.register_forward_pre_hook(lambda _m, args: sizes.append(args[0].shape[-1]))
    try:
        recipe = recipe_from("pii", {"steps_per_stage": 1, "ensemble": 1, **recipe_options})
        ClassInverter(spec_model, recipe, 32, 1, seeded(0)).invert(LABELS)
    finally:
        handle.remove()
    return sizes


def test_pii_feeds_a_cnn_the_small_canvas_and_a_vit_its_full_size(cnn):
    sizes = [8, 12, 16, 20, 24, 28, 32]
    assert _input_sizes(cnn.net, {}, cnn) == sizes  # as the PII code feeds CNNs
    assert _input_sizes(cnn.net, {"zoom_to_native": True}, cnn) == [32] * 7
    vit = build_classifier("digits:vit").freeze()
    assert _input_sizes(vit.net, {}, vit) == [32] * 7  # resized by its wrapper


# --- no label-changing augmentation on digits (tables: test_class_inversion_table.py) --


@pytest.mark.parametrize("path", sorted((CONFIGS / "digits").glob("class_inversion_*.yaml")))
def test_digits_configs_do_not_flip(path):
    model = yaml.safe_load(path.read_text())["model"]["init_args"]
    assert not recipe_from(model["recipe"], model.get("options")).flip


# --- Adaptive DeepInversion's competition term ---------------------------------------------


def test_competition_form_reaches_the_inverter(cnn):
    student = build_classifier("digits:mlp").freeze()
    values = {}
    for form in ("clamped", "exact"):
        recipe = recipe_from(
            "deepinversion",
            {
                "competition": 1.0,
                "competition_form": form,
                "low_res_steps": 0,
                "steps_per_stage": 1,
            },
        )
        inverter = ClassInverter(cnn, recipe, 32, 1, seeded(0), student=student)
        inverter.start(LABELS)
        values[form] = float(inverter.step()["competition"])
    assert 0.0 <= values["clamped"] <= 1.0
    assert values["clamped"] != values["exact"]
    with pytest.raises(InversionError, match="competition_form"):
        recipe_from("deepinversion", {"competition_form": "unclamped"})
