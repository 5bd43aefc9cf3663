import os
import pickle

import lightning.pytorch as pl
import pytest
import torch
from fake_data import write_fake_cifar10

from inversion import InversionError
from inversion.data.cifar import FOLDER, load_cifar10, read_cifar_batch
from model_inversion.datamodules import Cifar10DataModule
from model_inversion.datamodules.cifar import random_flip


def test_reads_the_official_format(tmp_path):
    write_fake_cifar10(tmp_path, per_file=4)
    images, labels = load_cifar10(tmp_path, "train")
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (20,) and labels.max() < 10
    test_images, _ = load_cifar10(tmp_path / FOLDER, "test")  # the folder itself works too
    assert test_images.shape == (4, 3, 32, 32)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    with pytest.raises(InversionError, match="refusing to load"):
        read_cifar_batch(path)


def test_missing_data_is_one_clear_error(tmp_path):
    with pytest.raises(InversionError, match="cifar-10-python.tar.gz"):
        Cifar10DataModule(root=str(tmp_path))
    with pytest.raises(InversionError, match="splits"):
        write_fake_cifar10(tmp_path)
        load_cifar10(tmp_path, "val")


def test_datamodule_gives_float_batches_and_augments_training_ones(tmp_path):
    write_fake_cifar10(tmp_path, per_file=8)
    dm = Cifar10DataModule(root=str(tmp_path), batch_size=16)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    dm.trainer = trainer
    raw = next(iter(dm.train_dataloader()))
    trainer.state.fn, trainer.training = "fit", True
    images, labels = dm.on_after_batch_transfer(raw, 0)
    assert images.dtype == torch.float32 and images.shape == (16, 3, 32, 32)
    assert 0 <= images.min() and images.max() <= 1
    assert not torch.equal(images, raw[0].float() / 255)  # shifted and/or flipped
    trainer.training = False
    plain, _ = dm.on_after_batch_transfer(next(iter(dm.test_dataloader())), 0)
    assert torch.equal(plain, load_cifar10(tmp_path, "test")[0][:8].float() / 255)


def test_random_flip_flips_about_half():
    images = torch.arange(4.0).view(1, 1, 1, 4).expand(1000, 1, 1, 4)
    flipped = (random_flip(images)[:, 0, 0, 0] == 3).float().mean()
    assert 0.4 < flipped < 0.6
