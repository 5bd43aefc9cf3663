"""Tests for model_inversion.datamodules.image_folder: folder scanning, transforms and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fake_data import SIZES, write_class_folder, write_image, write_imagenet_folder
from PIL import Image

from inversion.data.image_files import class_labels, open_image, read_image_uint8
from inversion.errors import InversionError
from model_inversion.datamodules.image_folder import (
    ImageFolderDataModule,
    ImageFolderDataset,
    scan_image_folder,
)

# --- scan_image_folder ------------------------------------------------------------------


def test_scan_class_layout(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "data")
    (root / "ant" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()  # hidden folder: not a class, even though it is empty
    (root / "bee" / ".DS_Store").write_bytes(b"\0\1")
    write_image(root / "bee" / "._img0.png", (10, 10))  # hidden image (macOS resource fork)
    (root / "bee" / "deep").mkdir()
    write_image(root / "bee" / "deep" / "nested.png", (10, 10))  # one level too deep: ignored
    write_image(root / "cat" / "UPPER.PNG", (10, 10))
    write_image(root / "cat" / "photo.JPG", (10, 10))

    files, labels, names = scan_image_folder(root)

    assert names == ["ant", "bee", "cat"]
    assert labels == [0] * 4 + [1] * 4 + [2] * 6
    assert files[:4] == [root / "ant" / f"img{i}.png" for i in range(4)]
    assert [f.name for f in files[8:]] == [
        "UPPER.PNG",
        "img0.png",
        "img1.png",
        "img2.png",
        "img3.png",
        "photo.JPG",
    ]
    assert all(f.parent.name == names[y] for f, y in zip(files, labels, strict=True))


def test_scan_flat_layout(tmp_path: Path) -> None:
    for i, size in enumerate(SIZES):
        write_image(tmp_path / f"z{i}.png", size, seed=i)
    write_image(tmp_path / "a.bmp", (9, 9))
    (tmp_path / "empty_subfolder").mkdir()  # no images anywhere below: still flat
    (tmp_path / "readme.md").write_text("hi")

    files, labels, names = scan_image_folder(str(tmp_path))

    assert names == []
    assert labels == [-1] * 5
    assert [f.name for f in files] == ["a.bmp", "z0.png", "z1.png", "z2.png", "z3.png"]


def test_scan_missing_root(tmp_path: Path) -> None:
    with pytest.raises(InversionError, match="does not exist"):
        scan_image_folder(tmp_path / "nope")


def test_scan_root_is_a_file(tmp_path: Path) -> None:
    write_image(tmp_path / "x.png", (10, 10))
    with pytest.raises(InversionError, match="not a directory"):
        scan_image_folder(tmp_path / "x.png")


def test_scan_empty_root(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "notes.txt").write_text("no images here")
    write_image(tmp_path / ".hidden.png", (10, 10))  # hidden files do not count
    with pytest.raises(InversionError, match=r"No images found.*Accepted layouts.*root/<class>"):
        scan_image_folder(tmp_path)


def test_scan_empty_class_folder(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path)
    (root / "dog").mkdir()
    (root / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(InversionError, match=r"dog.*hold no images; remove them or add images"):
        scan_image_folder(root)


def test_scan_loose_images_next_to_classes(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path)
    write_image(root / "stray.png", (10, 10))
    with pytest.raises(InversionError, match="stray.png.*move the loose images"):
        scan_image_folder(root)


# --- ImageFolderDataset -----------------------------------------------------------------


def test_eval_transform_keeps_colors_unnormalised(tmp_path: Path) -> None:
    path = tmp_path / "solid.png"
    path.parent.mkdir(exist_ok=True)
    Image.new("RGB", (30, 20), (255, 0, 128)).save(path)

    image, label = ImageFolderDataset([path], [2], 16, 3, train=False)[0]

    assert image.dtype == torch.float32 and type(image) is torch.Tensor
    assert image.shape == (3, 16, 16)
    assert label.dtype == torch.int64 and label.item() == 2
    expected = torch.tensor([1.0, 0.0, 128 / 255]).view(3, 1, 1).expand(3, 16, 16)
    torch.testing.assert_close(image, expected, atol=1e-6, rtol=0)


def test_eval_transform_resizes_shorter_side_then_center_crops(tmp_path: Path) -> None:
    # 40 x 20: red in the left quarter, blue elsewhere. Resizing the shorter side to 20
    # keeps it 40 x 20 and the center crop (columns 10..29) is all blue; squashing the
    # whole image to 20 x 20 would keep red columns.
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 10, 20))
    path = tmp_path / "halves.png"
    image.save(path)

    out, _ = ImageFolderDataset([path], [0], 20, 3, train=False)[0]

    assert out.shape == (3, 20, 20)
    assert out[0].max() < 0.01 and out[2].min() > 0.99


def test_grayscale_conversion(tmp_path: Path) -> None:
    path = tmp_path / "rgb.png"
    Image.new("RGB", (25, 12), (0, 255, 0)).save(path)

    gray, _ = ImageFolderDataset([path], [0], 8, 1, train=False)[0]

    assert gray.shape == (1, 8, 8)
    # PIL's L = 0.299 R + 0.587 G + 0.114 B
    torch.testing.assert_close(gray, torch.full((1, 8, 8), 150 / 255), atol=1e-6, rtol=0)


def test_train_transform_is_random_with_right_shape(tmp_path: Path) -> None:
    path = tmp_path / "noise.png"
    write_image(path, (20, 50), seed=3)
    dataset = ImageFolderDataset([path], [1], 24, 3, train=True)
    torch.manual_seed(0)

    draws = [dataset[0][0] for _ in range(6)]

    assert all(d.shape == (3, 24, 24) for d in draws)
    assert all(0.0 <= d.min() and d.max() <= 1.0 for d in draws)
    assert any(not torch.equal(draws[0], d) for d in draws[1:])


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png at all")
    dataset = ImageFolderDataset([bad], [0], 16, 3, train=False)
    with pytest.raises(InversionError, match=r"Cannot read image .*broken\.png.*Remove or replace"):
        dataset[0]


def test_dataset_mismatched_labels(tmp_path: Path) -> None:
    with pytest.raises(InversionError, match="2 files but 1 labels"):
        ImageFolderDataset([tmp_path / "a.png", tmp_path / "b.png"], [0], 16, 3, train=False)


# --- ImageFolderDataModule --------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_datamodule_imagenet_layout(tmp_path: Path, channels: int) -> None:
    root = write_imagenet_folder(tmp_path)
    dm = ImageFolderDataModule(str(root), image_size=16, channels=channels, batch_size=5)
    dm.setup("fit")

    assert dm.class_names == ["ant", "bee", "cat"]
    assert dm.num_classes == 3
    assert dm.hparams["root"] == str(root) and dm.hparams["channels"] == channels

    train = list(dm.train_dataloader())
    assert [x.shape[0] for x, _ in train] == [5, 5, 2]
    for x, y in train:
        assert x.shape[1:] == (channels, 16, 16) and x.dtype == torch.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert y.dtype == torch.int64
    assert sorted(torch.cat([y for _, y in train]).tolist()) == [0] * 4 + [1] * 4 + [2] * 4

    val = list(dm.val_dataloader())
    x_val = torch.cat([x for x, _ in val])
    y_val = torch.cat([y for _, y in val])
    assert x_val.shape == (12, channels, 16, 16)
    assert y_val.tolist() == [0] * 4 + [1] * 4 + [2] * 4  # not shuffled
    assert 0.0 <= x_val.min() and x_val.max() <= 1.0
    assert x_val.std() > 0.1  # real pixel content, not a constant
    # Validation is deterministic; training is augmented.
    torch.testing.assert_close(next(iter(dm.val_dataloader()))[0], val[0][0])


def test_datamodule_test_dir_and_fallback(tmp_path: Path) -> None:
    root = write_imagenet_folder(tmp_path, test=True)
    dm = ImageFolderDataModule(str(root), image_size=8, batch_size=64, test_dir="test")
    dm.setup("test")
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (13, 3, 8, 8)  # the extra image lives only in root/test
    assert y.tolist() == [0] * 5 + [1] * 4 + [2] * 4
    x_pred, _ = next(iter(dm.predict_dataloader()))
    torch.testing.assert_close(x_pred, x)

    dm = ImageFolderDataModule(str(root), image_size=8, batch_size=64)  # no test_dir: val
    dm.setup("test")
    assert next(iter(dm.test_dataloader()))[0].shape[0] == 12

    dm = ImageFolderDataModule(str(root), image_size=8, batch_size=64, test_dir="missing")
    with pytest.warns(UserWarning, match="missing does not exist"):
        dm.setup("test")
    assert next(iter(dm.test_dataloader()))[0].shape[0] == 12


def test_datamodule_no_augment_is_deterministic(tmp_path: Path) -> None:
    root = write_imagenet_folder(tmp_path)
    dm = ImageFolderDataModule(str(root), image_size=16, augment=False)
    dm.setup("fit")
    assert dm.train_dataloader().dataset.train is False
    torch.manual_seed(0)
    first = torch.stack([dm.train_dataloader().dataset[i][0] for i in range(12)])
    second = torch.stack([dm.train_dataloader().dataset[i][0] for i in range(12)])
    torch.testing.assert_close(first, second)


def test_datamodule_class_layout_eval_only(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "data")
    dm = ImageFolderDataModule(str(root), image_size=12, batch_size=4)
    dm.setup("validate")
    assert dm.class_names == ["ant", "bee", "cat"]
    xs, ys = zip(*dm.val_dataloader(), strict=True)
    assert torch.cat(xs).shape == (12, 3, 12, 12)
    assert torch.cat(ys).tolist() == [0] * 4 + [1] * 4 + [2] * 4
    dm.setup("fit")
    with pytest.raises(InversionError, match=r"Training needs root/train and root/val"):
        dm.train_dataloader()


def test_datamodule_flat_layout(tmp_path: Path) -> None:
    for i, size in enumerate(SIZES):
        write_image(tmp_path / f"im{i}.png", size, mode="L" if i % 2 else "RGB", seed=i)
    dm = ImageFolderDataModule(str(tmp_path), image_size=10, channels=1, batch_size=8)
    dm.setup("predict")
    assert dm.num_classes == 0 and dm.class_names == []
    x, y = next(iter(dm.predict_dataloader()))
    assert x.shape == (4, 1, 10, 10)
    assert y.tolist() == [-1] * 4
    with pytest.raises(InversionError, match="Training needs"):
        dm.train_dataloader()


def test_datamodule_loader_settings(tmp_path: Path) -> None:
    root = write_imagenet_folder(tmp_path)
    dm = ImageFolderDataModule(str(root), image_size=8, num_workers=1)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert loader.persistent_workers is True and loader.pin_memory is False
    assert loader.num_workers == 1
    dm = ImageFolderDataModule(str(root), image_size=8)
    dm.setup("fit")
    assert dm.val_dataloader().persistent_workers is False


def test_datamodule_init_does_not_touch_disk(tmp_path: Path) -> None:
    dm = ImageFolderDataModule(str(tmp_path / "later"))  # fine before the data exists
    with pytest.raises(InversionError, match="call setup"):
        dm.val_dataloader()
    with pytest.raises(InversionError, match="setup"):
        _ = dm.num_classes
    with pytest.raises(InversionError, match="does not exist"):
        dm.setup("fit")


def test_datamodule_empty_root(tmp_path: Path) -> None:
    dm = ImageFolderDataModule(str(tmp_path))
    with pytest.raises(InversionError, match="No images found"):
        dm.setup("validate")


def test_datamodule_empty_class_folder(tmp_path: Path) -> None:
    root = write_imagenet_folder(tmp_path)
    (root / "val" / "dog").mkdir()
    dm = ImageFolderDataModule(str(root))
    with pytest.raises(InversionError, match="dog.*remove them or add images"):
        dm.setup("fit")


def test_datamodule_only_train_folder(tmp_path: Path) -> None:
    write_class_folder(tmp_path / "train")
    dm = ImageFolderDataModule(str(tmp_path))
    with pytest.raises(InversionError, match=r"but not .*val.*needs both"):
        dm.setup("fit")


def test_datamodule_class_mismatch(tmp_path: Path) -> None:
    write_class_folder(tmp_path / "train")
    write_class_folder(tmp_path / "val", ["ant", "bee"])
    dm = ImageFolderDataModule(str(tmp_path))
    with pytest.raises(InversionError, match="same class subfolders"):
        dm.setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "hint"),
    [
        ({"channels": 2}, "1 or 3 channels"),
        ({"channels": 4}, "1 or 3 channels"),
        ({"image_size": 4}, "at least 8"),
        ({"batch_size": 0}, "batch_size"),
        ({"num_workers": -1}, "num_workers"),
    ],
)
def test_datamodule_bad_args(tmp_path: Path, kwargs: dict, hint: str) -> None:
    with pytest.raises(InversionError, match=hint):
        ImageFolderDataModule(str(tmp_path), **kwargs)


# --- 16-bit images: one loader, scaled to [0, 1] ------------------------------------------

SIXTEEN_BIT = [0, 257, 1000, 20000, 32768, 50000, 65280, 65535]


def write_16_bit_png(path: Path) -> np.ndarray:
    """An 8 x 8 16-bit grayscale PNG (mode I;16), each row the values above; returns them."""
    values = np.array(SIXTEEN_BIT * 8, dtype=np.uint16).reshape(8, 8)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    with Image.open(path) as reread:
        assert reread.mode == "I;16"  # PIL reads it back as 16-bit
    return values


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_png_is_scaled_not_saturated(tmp_path: Path, channels: int) -> None:
    values = write_16_bit_png(tmp_path / "a.png")
    expected = torch.from_numpy(values / 65535).float().expand(channels, 8, 8)
    x = ImageFolderDataset([tmp_path / "a.png"], [0], 8, channels, train=False)[0][0]
    raw = read_image_uint8(tmp_path / "a.png", channels).float() / 255
    for image in (x, raw):  # the folder DataModule's and evaluate.py's / FID's reads
        assert image.shape == (channels, 8, 8)
        torch.testing.assert_close(image, expected, atol=0.5 / 255 + 1e-6, rtol=0)
        assert float(image.max()) == 1.0 and float(image.min()) == 0.0
        assert 0.49 < float(image[0, 0, 4]) < 0.51  # 32768: mid-gray, not white
    assert float(x.mean()) < 0.6  # PIL alone clips every value above 255 to white


def test_32_bit_integer_and_float_images_are_scaled(tmp_path: Path) -> None:
    wide = np.array([[0, 32768, 65535, 70000]], dtype=np.int32)
    Image.fromarray(wide, "I").save(tmp_path / "i.tif")
    floats = np.array([[0.0, 0.5, 1.0, 2.0]], dtype=np.float32)
    Image.fromarray(floats, "F").save(tmp_path / "f.tif")
    for name in ("i.tif", "f.tif"):
        with Image.open(tmp_path / name) as image:
            assert image.mode in ("I", "F")
        assert read_image_uint8(tmp_path / name, 1).flatten().tolist() == [0, 128, 255, 255]


def test_every_reader_uses_the_one_loader(tmp_path: Path) -> None:
    write_16_bit_png(tmp_path / "a.png")
    direct = torch.from_numpy(np.asarray(open_image(tmp_path / "a.png", 1)).copy())
    assert torch.equal(read_image_uint8(tmp_path / "a.png", 1)[0], direct)
    dataset = ImageFolderDataset([tmp_path / "a.png"], [-1], 8, 1, train=False)
    assert np.array_equal(np.asarray(dataset.load(0)), direct.numpy())


# --- one rule for class-folder labels --------------------------------------------------


@pytest.mark.parametrize(
    ("names", "labels"),
    [
        (["0", "1", "2"], {"0": 0, "1": 1, "2": 2}),
        (["1", "2", "10"], {"1": 1, "2": 2, "10": 10}),  # sorted as text: 1, 10, 2
        (["7", "3"], {"3": 3, "7": 7}),
        (["007", "12"], {"007": 7, "12": 12}),
        (["cat", "ant", "bee"], {"ant": 0, "bee": 1, "cat": 2}),
        (["3", "cat"], {"3": 0, "cat": 1}),  # not all numbers: sorted positions
        (["n01440764", "n01443537"], {"n01440764": 0, "n01443537": 1}),
    ],
)
def test_class_labels_rule(names: list[str], labels: dict[str, int]) -> None:
    assert class_labels(names) == labels


def test_two_folders_of_one_class_number_are_refused(tmp_path: Path) -> None:
    write_class_folder(tmp_path / "data", ["7", "07"])
    with pytest.raises(InversionError, match="07 and 7 are the same class number"):
        scan_image_folder(tmp_path / "data")


@pytest.fixture
def digits_folder(tmp_path: Path) -> Path:
    """Six real test digits each of classes 3, 5, 7 and 8, in folders named by the class."""
    from inversion.data.digits import load_digits_split

    images, labels = load_digits_split("test", 32, 1)
    root = tmp_path / "digits"
    for label in (3, 5, 7, 8):
        chosen = images[labels == label][:6]
        for i, image in enumerate(chosen):
            write_pixels = (image[0] * 255).round().byte().numpy()
            (root / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(write_pixels).save(root / str(label) / f"{i}.png")
    return root


def test_datamodule_and_evaluate_label_and_score_numbered_folders_alike(
    digits_folder: Path, tmp_path: Path
) -> None:
    from inversion.models import build_classifier
    from model_inversion import evaluate

    dm = ImageFolderDataModule(str(digits_folder), image_size=32, channels=1, batch_size=8)
    dm.setup("validate")
    files, folder_labels = evaluate.folder_labels(digits_folder, None)
    module_labels = dm._datasets["val"].labels
    assert module_labels == folder_labels == [3] * 6 + [5] * 6 + [7] * 6 + [8] * 6
    assert dm._datasets["val"].files == files
    assert dm.class_names == ["3", "5", "7", "8"] and dm.num_classes == 9

    verifier = build_classifier("digits:cnn").freeze()
    correct = 0
    for x, y in dm.val_dataloader():
        correct += int((verifier(x).argmax(1) == y).sum())
    module_top1 = correct / len(module_labels)
    results = evaluate.main(
        ["folder", str(digits_folder), "--verifiers", "digits:cnn", "--feature", "none"]
        + ["--out", str(tmp_path / "results"), "--device", "cpu"]
    )
    assert results["top1_digits-cnn"] == pytest.approx(module_top1)
    assert module_top1 > 0.8  # the labels are the digits' classes, not positions 0..3
