"""Images from a folder on disk, as float tensors in [0, 1] (not normalised).

Three layouts are understood:

* **ImageNet layout** (needed for training): ``root/train/<class>/<image>`` and
  ``root/val/<class>/<image>``, optionally ``root/test/<class>/<image>``. Every split has
  the same class subfolders.
* **Class layout**: ``root/<class>/<image>``. Used for validation, test and prediction only.
* **Flat layout**: ``root/<image>``. Every label is -1 and there are no class names; used
  for validation, test and prediction only (for example to invert or score unlabeled images).

Class folders are labelled as everywhere in the project
(:func:`inversion.data.image_files.class_labels`): folders all named by numbers (``0`` ...
``9``, or ``3`` and ``7``) get that number as label; otherwise labels are positions in
sorted name order, so ImageNet synset folders (``n01440764``, ...) map to the standard
indices 0..999. Images are decoded by :func:`inversion.data.image_files.open_image`
(16-bit images scaled to 8 bits, not clipped).

Only files directly inside a class folder (or directly inside ``root`` for the flat layout)
are read; deeper folders are not searched. Names starting with ``.`` are ignored, as are
files whose extension (any case) is not one of :data:`IMAGE_EXTENSIONS`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from inversion.data.image_files import open_image, scan_image_folder
from inversion.errors import InversionError
from inversion.models.classifier import EvalTransform
from model_inversion.datamodules.base import BaseDataModule

TRAIN_SCALE = (0.35, 1.0)
MIN_IMAGE_SIZE = 8


def _check_image_args(image_size: int, channels: int) -> None:
    if channels not in (1, 3):
        raise InversionError(f"Image folders give 1 or 3 channels, not channels={channels}.")
    if image_size < MIN_IMAGE_SIZE:
        raise InversionError(f"image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}.")


class ImageFolderDataset(Dataset):
    """Images read from a list of files, resized and cropped to a square.

    Evaluation transform: a model's own (``eval_transform``: resize to ``image_size /
    crop_pct`` with its interpolation, then centre crop ``image_size``, on the decoded
    picture as timm and torchvision do), or by default resize the shorter side to
    ``image_size`` (bilinear, antialiased) and centre crop. Training transform:
    ``RandomResizedCrop(image_size, scale=(0.35, 1))`` and a random horizontal flip. Images
    are returned in [0, 1] without normalisation (models normalise their own inputs).

    Args:
        files: Image paths.
        labels: One label per file (-1 for unlabeled images).
        image_size: Output side length in pixels (at least 8).
        channels: 1 (converted to grayscale) or 3 (converted to RGB).
        train: Use the random training transform instead of the evaluation one.
        eval_transform: A model's own evaluation resize and crop (see
            :func:`inversion.models.specs.eval_transform_of`); None for the default.
    """

    def __init__(
        self,
        files: list[Path],
        labels: list[int],
        image_size: int,
        channels: int,
        train: bool,
        eval_transform: EvalTransform | None = None,
    ) -> None:
        if len(files) != len(labels):
            raise InversionError(f"Got {len(files)} files but {len(labels)} labels.")
        _check_image_args(image_size, channels)
        self.files = [Path(f) for f in files]
        self.labels = list(labels)
        self.image_size = image_size
        self.channels = channels
        self.train = train
        if train:
            geometry = [
                v2.RandomResizedCrop(image_size, scale=TRAIN_SCALE, antialias=True),
                v2.RandomHorizontalFlip(),
            ]
        elif eval_transform is not None:  # resample the decoded picture, as timm/torchvision do
            self.transform = v2.Compose(
                [
                    *eval_transform.transforms(image_size),
                    v2.ToImage(),
                    v2.ToDtype(torch.float32, scale=True),
                ]
            )
            return
        else:
            geometry = [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
        self.transform = v2.Compose(
            [v2.ToImage(), *geometry, v2.ToDtype(torch.float32, scale=True)]
        )

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> Image.Image:
        """Open one file as a PIL image in mode ``"L"`` or ``"RGB"`` (see ``open_image``).

        Args:
            index: Position in :attr:`files`.

        Returns:
            The decoded image.

        Raises:
            InversionError: If PIL cannot read the file.
        """
        return open_image(self.files[index], self.channels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = self.transform(self.load(index)).as_subclass(Tensor)
        return image, torch.tensor(self.labels[index], dtype=torch.long)


class ImageFolderDataModule(BaseDataModule):
    """Train, validation, test and predict loaders over image folders.

    If ``root/train_dir`` and ``root/val_dir`` both exist (ImageNet layout), training reads
    ``train_dir`` and validation ``val_dir``; test and predict read ``test_dir`` when given
    and present, else ``val_dir``. Otherwise the whole of ``root`` (class or flat layout) is
    used for validation, test and predict, and there is no training set. Folders are only
    read in :meth:`setup`, so a configuration can be built before the data exists.

    Args:
        root: The data folder.
        image_size: Side length of the square images.
        channels: 1 (grayscale) or 3 (RGB).
        batch_size: Images per batch.
        num_workers: Loader worker processes (0: load in the main process).
        train_dir: Training subfolder of ``root`` (ImageNet layout).
        val_dir: Validation subfolder of ``root`` (ImageNet layout).
        test_dir: Optional test subfolder of ``root`` (ImageNet layout).
        augment: Use random crops and flips for training; if false, the evaluation
            transform.
        eval_transform: A classifier spec (e.g. ``torchvision:resnet50.IMAGENET1K_V1``,
            ``timm:resnet50.tv_in1k``) whose own eval transform validation, test and
            predict use: resize 256 -> centre crop 224 with the model's interpolation
            (for ``image_size`` 224; other sizes keep its crop ratio). None: resize the
            shorter side to ``image_size`` and centre crop.
    """

    def __init__(
        self,
        root: str,
        image_size: int = 224,
        channels: int = 3,
        batch_size: int = 32,
        num_workers: int = 0,
        train_dir: str = "train",
        val_dir: str = "val",
        test_dir: str | None = None,
        augment: bool = True,
        eval_transform: str | None = None,
    ) -> None:
        super().__init__()
        _check_image_args(image_size, channels)
        self.save_hyperparameters()  # checks batch_size and num_workers
        self.root = Path(root).expanduser()
        self.image_size = image_size
        self.channels = channels
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.train_dir = train_dir
        self.val_dir = val_dir
        self.test_dir = test_dir
        self.augment = augment
        self.eval_transform = eval_transform
        self._eval: EvalTransform | None = None
        self._scans: dict[Path, tuple[list[Path], list[int], list[str]]] = {}
        self._datasets: dict[str, ImageFolderDataset] = {}
        self._class_names: list[str] | None = None
        self._num_classes = 0

    def _imagenet_layout(self) -> bool:
        if not self.root.is_dir():
            scan_image_folder(self.root)  # raises the missing / not-a-directory error
        train, val = self.root / self.train_dir, self.root / self.val_dir
        if train.is_dir() and val.is_dir():
            return True
        if train.is_dir() or val.is_dir():
            found, missing = (train, val) if train.is_dir() else (val, train)
            raise InversionError(
                f"Found {found} but not {missing}; the ImageNet layout needs both "
                f"root/{self.train_dir} and root/{self.val_dir} subfolders. Add the missing "
                "one, or set train_dir / val_dir to the folders you have."
            )
        return False

    def _folders(self) -> dict[str, Path | None]:
        if not self._imagenet_layout():
            return {"train": None, "val": self.root, "test": self.root}
        test = self.root / self.val_dir
        if self.test_dir is not None:
            if (self.root / self.test_dir).is_dir():
                test = self.root / self.test_dir
            else:
                warnings.warn(
                    f"Test folder {self.root / self.test_dir} does not exist; testing on "
                    f"{test} instead.",
                    stacklevel=2,
                )
        return {
            "train": self.root / self.train_dir,
            "val": self.root / self.val_dir,
            "test": test,
        }

    def _scan(self, folder: Path) -> tuple[list[Path], list[int], list[str]]:
        if folder not in self._scans:
            self._scans[folder] = scan_image_folder(folder)
        return self._scans[folder]

    def setup(self, stage: str | None = None) -> None:
        """Scan the folders that ``stage`` needs and build their datasets.

        Args:
            stage: ``"fit"``, ``"validate"``, ``"test"``, ``"predict"`` or None (all).

        Raises:
            InversionError: If the folders are missing, empty or malformed, or the class
                folders of two splits differ.
        """
        folders = self._folders()
        splits = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
        }.get(stage or "", ("train", "val", "test"))
        if self.eval_transform is not None and self._eval is None:
            from inversion.models.specs import eval_transform_of

            self._eval = eval_transform_of(self.eval_transform)
            if self._eval is None:
                raise InversionError(
                    f"{self.eval_transform} has no eval transform of its own (timm and "
                    "torchvision models have one); leave eval_transform unset."
                )
        for split in splits:
            folder = folders[split]
            if folder is None:
                continue  # no training set: train_dataloader explains
            files, labels, class_names = self._scan(folder)
            if class_names and not self._class_names:
                self._class_names = class_names
                self._num_classes = max(labels) + 1
            elif class_names and class_names != self._class_names:
                raise InversionError(
                    f"The class folders of {folder} ({len(class_names)} classes) differ from "
                    f"those of the other splits ({len(self._class_names or [])} classes); give "
                    "every split the same class subfolders."
                )
            elif self._class_names is None:
                self._class_names = []  # a flat folder, unless a later split has classes
            train = split == "train" and self.augment
            self._datasets[split] = ImageFolderDataset(
                files,
                labels,
                self.image_size,
                self.channels,
                train=train,
                eval_transform=self._eval,
            )

    @property
    def class_names(self) -> list[str]:
        """Class folder names in label order (empty for a flat folder); after setup."""
        return list(self._set_up_class_names())

    @property
    def num_classes(self) -> int:
        """Classes a classifier needs for these labels: the largest label + 1.

        The number of class folders, unless they are named by numbers (folders ``3`` and
        ``7`` need 8 classes); 0 for a flat folder. Available after setup.
        """
        self._set_up_class_names()
        return self._num_classes

    def _set_up_class_names(self) -> list[str]:
        if self._class_names is None:
            raise InversionError("Call setup() on the ImageFolderDataModule first.")
        return self._class_names

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self._datasets:
            raise InversionError(
                f"No {split} dataset: call setup() on the ImageFolderDataModule first."
            )
        return DataLoader(
            self._datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=False,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (ImageNet layout only)."""
        if "train" not in self._datasets and self._folders()["train"] is None:
            raise InversionError(
                f"Training needs root/{self.train_dir} and root/{self.val_dir} subfolders "
                f"(ImageNet layout) in {self.root}; a plain class or flat folder is only used "
                "for validation, test and predict, since training and validating on the same "
                "images would be misleading."
            )
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in file order."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in file order."""
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        """The test set, in file order."""
        return self._loader("test", shuffle=False)
