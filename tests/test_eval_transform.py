"""Each model's own eval transform for image folders, checked against timm's and torchvision's.

A picture read through ``ImageFolderDataset`` with a model's :class:`EvalTransform` and
normalised by the model's wrapper must be the tensor that timm's data config
(``resolve_model_data_config`` + ``create_transform``) or torchvision's
``weights.transforms()`` make of the same picture. Models are randomly initialised (no
weights are downloaded): the transform depends only on the spec.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inversion import InversionError, build_classifier
from inversion.models.specs import eval_transform_of
from model_inversion.datamodules.image_folder import ImageFolderDataModule, ImageFolderDataset


def write_picture(path: Path, size: tuple[int, int] = (341, 277), seed: int = 0) -> Path:
    """A random RGB picture (width x height) larger than any crop, not square."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def library_transform(spec: str, net: torch.nn.Module):
    """The library's own eval transform for a spec (normalising, from a PIL image)."""
    if spec.startswith("timm:"):
        from timm.data import create_transform, resolve_model_data_config

        return create_transform(**resolve_model_data_config(net), is_training=False)
    from torchvision.models import get_model_weights

    arch, _, version = spec.removeprefix("torchvision:").partition(".")
    return get_model_weights(arch)[version].transforms()


@pytest.mark.parametrize(
    ("spec", "resize", "crop", "interpolation"),
    [
        ("timm:resnet50.tv_in1k", 256, 224, "bilinear"),
        ("timm:resnet50", 235, 224, "bicubic"),  # a1_in1k: crop_pct 0.95
        ("timm:vit_tiny_patch16_384.augreg_in21k_ft_in1k", 384, 384, "bicubic"),
        ("timm:deit_tiny_patch16_224.fb_in1k", 248, 224, "bicubic"),
        ("torchvision:resnet50.IMAGENET1K_V1", 256, 224, "bilinear"),
        ("torchvision:resnet50.IMAGENET1K_V2", 232, 224, "bilinear"),
        ("torchvision:efficientnet_b0.IMAGENET1K_V1", 256, 224, "bicubic"),
    ],
)
def test_eval_transform_equals_the_library_own(tmp_path, spec, resize, crop, interpolation):
    model = build_classifier(spec, pretrained=False)
    transform = model.eval_transform
    assert transform is not None
    assert (transform.resize_size, transform.crop_size) == (resize, crop)
    assert transform.interpolation == interpolation
    picture = write_picture(tmp_path / "a.png")
    dataset = ImageFolderDataset([picture], [0], crop, 3, train=False, eval_transform=transform)
    image, _ = dataset[0]
    assert image.shape == (3, crop, crop) and 0 <= image.min() and image.max() <= 1
    ours = model.prepare(image[None])[0]  # the wrapper's normalisation, as the model sees it
    with Image.open(picture) as pil:
        theirs = library_transform(spec, model.net)(pil.convert("RGB"))
    torch.testing.assert_close(ours, theirs)
    default = ImageFolderDataset([picture], [0], crop, 3, train=False)[0][0]
    assert not torch.allclose(default, image, atol=1e-2)  # resizing straight to the crop differs


def test_squash_crop_mode_equals_timm(tmp_path):
    spec = "timm:convnextv2_nano.fcmae_ft_in22k_in1k_384"
    model = build_classifier(spec, pretrained=False)
    assert model.eval_transform is not None and model.eval_transform.crop_mode == "squash"
    picture = write_picture(tmp_path / "a.png", (400, 390))
    dataset = ImageFolderDataset(
        [picture], [0], 384, 3, train=False, eval_transform=model.eval_transform
    )
    with Image.open(picture) as pil:
        theirs = library_transform(spec, model.net)(pil.convert("RGB"))
    torch.testing.assert_close(model.prepare(dataset[0][0][None])[0], theirs)


def test_datamodule_takes_the_transform_from_a_spec(tmp_path):
    from torchvision.models import ResNet50_Weights

    for i in range(2):
        write_picture(tmp_path / "val" / "n01" / f"{i}.png", (300 + 7 * i, 260), seed=i)
    data = ImageFolderDataModule(
        str(tmp_path / "val"),
        image_size=224,
        batch_size=2,
        eval_transform="torchvision:resnet50.IMAGENET1K_V1",
    )
    data.setup("test")
    images, labels = next(iter(data.test_dataloader()))
    mean = torch.tensor(ResNet50_Weights.IMAGENET1K_V1.transforms().mean).view(1, 3, 1, 1)
    std = torch.tensor(ResNet50_Weights.IMAGENET1K_V1.transforms().std).view(1, 3, 1, 1)
    expected = []
    for i in range(2):
        with Image.open(tmp_path / "val" / "n01" / f"{i}.png") as pil:
            expected.append(ResNet50_Weights.IMAGENET1K_V1.transforms()(pil.convert("RGB")))
    torch.testing.assert_close((images - mean) / std, torch.stack(expected))
    assert labels.tolist() == [0, 0]


def test_other_sizes_keep_the_crop_ratio(tmp_path):
    transform = eval_transform_of("torchvision:resnet50.IMAGENET1K_V1")
    assert transform is not None
    assert transform.resize_for(32) == 36 and transform.resize_for(224) == 256
    picture = write_picture(tmp_path / "a.png")
    image, _ = ImageFolderDataset([picture], [0], 32, 1, train=False, eval_transform=transform)[0]
    assert image.shape == (1, 32, 32)


def test_models_without_an_eval_transform(tmp_path):
    assert eval_transform_of("digits:cnn") is None
    write_picture(tmp_path / "a.png")
    data = ImageFolderDataModule(str(tmp_path), image_size=32, eval_transform="digits:cnn")
    with pytest.raises(InversionError, match="no eval transform"):
        data.setup("test")
    with pytest.raises(InversionError, match="Unknown timm"):
        ImageFolderDataModule(str(tmp_path), eval_transform="timm:resnet51").setup("test")
