import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from trainers import quiet_trainer

from inversion import InversionError
from inversion.data.image_files import scan_image_folder
from inversion.data.synthesised import MANIFEST, read_synthesised_folder, write_manifest, write_png
from model_inversion import train
from model_inversion.callbacks import SaveImages
from model_inversion.datamodules import DigitsDataModule, SyntheticImagesDataModule
from model_inversion.lightning_modules import RealImages

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


@pytest.fixture(scope="module")
def synthesised(tmp_path_factory) -> Path:
    """Class inversion writes a stamped folder through the CLI (the README's first command)."""
    root = tmp_path_factory.mktemp("flow")
    folder = root / "synthesised"
    cli = train.main(
        [
            "fit",
            "--config",
            str(REPO / "configs/digits/class_inversion_deepinversion.yaml"),
            "--trainer.callbacks+=SaveImages",
            f"--trainer.callbacks.dirpath={folder}",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={root}",
            "--model.init_args.options={steps_per_stage: 2, low_res_steps: 0, warmup_steps: 0}",
            "--data.init_args.classes=[3, 7]",
            "--data.init_args.images_per_class=3",
        ]
    )
    assert cli.trainer.state.finished
    return folder


def test_save_images_writes_class_folders_and_a_stamp(synthesised):
    manifest = json.loads((synthesised / MANIFEST).read_text())
    assert manifest["producer"]["module"] == "ClassInversion"
    assert sorted({Path(f).parent.name for f in manifest["files"]}) == ["3", "7"]
    files, labels, classes = scan_image_folder(synthesised)  # evaluate.py folder reads it
    assert len(files) == 6 and classes == ["3", "7"]
    files, labels = read_synthesised_folder(synthesised)
    assert sorted(labels) == [3, 3, 3, 7, 7, 7]


def test_layerwise_trains_from_the_synthesised_folder(synthesised, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = train.main(
        [
            "fit",
            "--config",
            str(REPO / "configs/digits/layerwise.yaml"),
            f"--data.init_args.source={synthesised}",
            "--data.init_args.batch_size=2",
            "--data.init_args.evaluate_on=digits:test",
            "--trainer.fast_dev_run=true",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert cli.trainer.global_step == 1
    batch = next(iter(cli.datamodule.train_dataloader()))
    assert batch[0].shape == (2, 1, 32, 32) and set(batch[1].tolist()) <= {3, 7}


def copy_folder(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def test_a_tampered_folder_is_refused(synthesised, tmp_path):
    extra = copy_folder(synthesised, tmp_path / "extra")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(extra / "3" / "real.png")
    with pytest.raises(InversionError, match="does not list"):
        SyntheticImagesDataModule(source=str(extra), evaluate_on="digits:val")

    changed = copy_folder(synthesised, tmp_path / "changed")
    first = sorted((changed / "7").iterdir())[0]
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(first)
    with pytest.raises(InversionError, match="changed since they were synthesised"):
        SyntheticImagesDataModule(source=str(changed), evaluate_on="digits:val")

    unstamped = copy_folder(synthesised, tmp_path / "unstamped")
    (unstamped / MANIFEST).unlink()
    with pytest.raises(InversionError, match="not stamped as synthesised"):
        SyntheticImagesDataModule(source=str(unstamped))


def test_a_folder_of_real_images_cannot_be_stamped_for_training(tmp_path):
    from inversion.data.digits import load_digits_split

    images, _ = load_digits_split("test")
    files = {f"{i}.png": write_png(images[i], tmp_path / f"{i}.png") for i in range(4)}
    write_manifest(tmp_path, files, {"module": "RealImages"})
    with pytest.raises(InversionError, match="written by RealImages"):
        SyntheticImagesDataModule(source=str(tmp_path), num_val_images=1)


def test_noise_batches_are_indexed_by_step_and_rank_free_of_order():
    data = SyntheticImagesDataModule(source="gaussian", batch_size=3, steps=5)
    batches = list(data.train_dataloader())
    assert len(batches) == 5 and batches[0][0].shape == (3, 1, 32, 32)
    assert (batches[0][1] == -1).all()
    again = SyntheticImagesDataModule(source="gaussian", batch_size=3, steps=5)
    torch.testing.assert_close(next(iter(again.train_dataloader()))[0], batches[0][0])
    assert not torch.equal(batches[0][0], batches[1][0])
    with pytest.raises(InversionError, match="choose one of"):
        SyntheticImagesDataModule(source="smooth", evaluate_on="digits:holdout").val_dataloader()


def _save_real_images(folder: Path, root: Path):
    saver = SaveImages(dirpath=str(folder), stages=["test"])
    trainer = quiet_trainer(callbacks=[saver], limit_test_batches=1, default_root_dir=str(root))
    trainer.test(RealImages(), datamodule=DigitsDataModule(batch_size=8))
    return saver


def test_save_images_rerun_replaces_its_own_images(tmp_path):
    folder = tmp_path / "out"
    _save_real_images(folder, tmp_path)
    stale = folder / "3" / "0-000099.png"  # listed by the stamp: an earlier run's image
    write_png(torch.zeros(1, 32, 32), stale)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"]["3/0-000099.png"] = "0" * 64
    (folder / MANIFEST).write_text(json.dumps(manifest))
    _save_real_images(folder, tmp_path)
    listed = set(json.loads((folder / MANIFEST).read_text())["files"])
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*.png")}
    assert not stale.exists() and on_disk == listed and len(listed) == 8


@pytest.mark.parametrize("escape", ["dotdot", "absolute", "symlink", "symlinked_folder"])
def test_save_images_never_deletes_outside_its_folder(tmp_path, escape):
    outside = tmp_path / "outside"
    victim = outside / "victim.png"
    write_png(torch.zeros(1, 32, 32), victim)
    folder = tmp_path / "out"
    own = {"0/0-000000.png": write_png(torch.ones(1, 32, 32), folder / "0" / "0-000000.png")}
    if escape == "dotdot":
        entry = "../outside/victim.png"
    elif escape == "absolute":
        entry = str(victim)
    elif escape == "symlink":
        entry = "1/0-000001.png"
        (folder / "1").mkdir()
        (folder / entry).symlink_to(victim)
    else:
        entry = "link/victim.png"
        (folder / "link").symlink_to(outside, target_is_directory=True)
    write_manifest(folder, {**own, entry: "0" * 64}, {"module": "ClassInversion"})
    with pytest.raises(InversionError, match=f"lists '{entry}'.*outside") as error:
        _save_real_images(folder, tmp_path)
    assert "nothing was deleted" in str(error.value)
    assert victim.is_file() and (folder / MANIFEST).is_file()
    assert (folder / "0" / "0-000000.png").is_file()  # refused before deleting anything
