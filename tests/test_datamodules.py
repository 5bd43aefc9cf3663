import pytest
import torch

from inversion import InversionError
from inversion.data.digits import load_digits_split, random_translate
from inversion.data.noise import noise_images
from model_inversion.datamodules import (
    ClassTargetsDataModule,
    DigitsDataModule,
    NoiseDataModule,
    ShardedSampler,
)


def test_digits_split_is_fixed_disjoint_and_complete():
    sizes = {s: len(load_digits_split(s, image_size=8)[0]) for s in ("train", "val", "test")}
    assert sizes == {"train": 1257, "val": 180, "test": 360}
    flat = {s: load_digits_split(s, image_size=8)[0].flatten(1) for s in sizes}
    # exact duplicates exist in the raw data, so check disjointness of indices instead
    from inversion.data.digits import _split_indices

    idx = _split_indices()
    assert not set(idx["train"]) & set(idx["test"]) and not set(idx["val"]) & set(idx["test"])
    assert sum(len(v) for v in idx.values()) == 1797
    assert torch.equal(flat["test"], load_digits_split("test", image_size=8)[0].flatten(1))


@pytest.mark.parametrize(("size", "channels"), [(32, 1), (28, 3)])
def test_digits_datamodule_batches(size, channels):
    dm = DigitsDataModule(image_size=size, channels=channels, batch_size=16)
    dm.setup("fit")
    images, labels = next(iter(dm.val_dataloader()))
    assert images.shape == (16, channels, size, size) and labels.dtype == torch.long
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() > 0.9
    assert dm.num_classes == 10 and set(labels.tolist()) <= set(range(10))


def test_digits_bad_arguments():
    with pytest.raises(InversionError, match="1 or 3 channels"):
        DigitsDataModule(channels=2)
    with pytest.raises(InversionError, match="at least 8"):
        DigitsDataModule(image_size=4)


def test_random_translate_shifts_content_without_scaling():
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, 3, 3] = 1.0
    shifted = random_translate(image.repeat(64, 1, 1, 1), 2, torch.Generator().manual_seed(0))
    assert torch.all(shifted.flatten(1).sum(1) == 1.0)  # the pixel moved, never vanished
    positions = {tuple(torch.nonzero(s[0])[0].tolist()) for s in shifted}
    assert len(positions) > 5 and all(1 <= r <= 5 and 1 <= c <= 5 for r, c in positions)


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "smooth"])
def test_noise_kinds(kind):
    dm = NoiseDataModule(
        kind=kind, num_samples=8, num_val_samples=4, image_size=16, channels=3, batch_size=4
    )
    images, labels = next(iter(dm.val_dataloader()))
    assert images.shape == (4, 3, 16, 16) and torch.all(labels == -1)
    assert images.min() >= 0 and images.max() <= 1 and images.std() > 0.01
    again, _ = next(iter(dm.val_dataloader()))
    torch.testing.assert_close(images, again)  # item i is reproducible
    test_images, _ = next(iter(dm.test_dataloader()))
    assert not torch.equal(images, test_images)  # splits differ


def test_smooth_noise_is_low_frequency():
    gen = torch.Generator().manual_seed(0)

    def roughness(x):
        return (x[..., 1:] - x[..., :-1]).abs().mean()

    smooth = noise_images("smooth", 8, 1, 32, gen)
    uniform = noise_images("uniform", 8, 1, 32, gen)
    assert roughness(smooth) < 0.3 * roughness(uniform)


def test_noise_bad_kind():
    with pytest.raises(InversionError, match="gaussian"):
        NoiseDataModule(kind="pink")


def test_class_targets_items():
    dm = ClassTargetsDataModule(num_classes=10, classes=[3, 7], images_per_class=3, batch_size=4)
    batches = list(dm.train_dataloader())
    indices = torch.cat([b["index"] for b in batches])
    labels = torch.cat([b["label"] for b in batches])
    assert indices.tolist() == list(range(6)) and labels.tolist() == [3, 3, 3, 7, 7, 7]
    assert dm.num_targets == 6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"classes": []}, "empty"),
        ({"classes": [1, 10]}, "outside"),
        ({"classes": [1, 1]}, "twice"),
        ({"images_per_class": 0}, "at least 1"),
    ],
)
def test_class_targets_bad_arguments(kwargs, match):
    with pytest.raises(InversionError, match=match):
        ClassTargetsDataModule(num_classes=10, **kwargs)


@pytest.mark.parametrize("length", [1, 7, 10])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_sharded_sampler_never_duplicates(length, world):
    seen = []
    for rank in range(world):
        sampler = ShardedSampler(range(length), num_replicas=world, rank=rank)
        shard = list(sampler)
        assert len(shard) == len(sampler)
        seen += shard
    assert sorted(seen) == list(range(length))
