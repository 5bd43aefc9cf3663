"""The documented way to train a verifier on your own image folder and score with it."""

from pathlib import Path

import torch
from PIL import Image

from model_inversion import evaluate, train

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "image_folder" / "classifier.yaml"


def write_two_class_folder(root: Path, per_class: int) -> Path:
    """Bright and dark noise images in class folders ``bright`` and ``dark``."""
    generator = torch.Generator().manual_seed(0)
    for name, offset in (("bright", 128), ("dark", 0)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 128, (24, 24, 3), generator=generator) + offset
            Image.fromarray(pixels.to(torch.uint8).numpy()).save(root / name / f"{i}.png")
    return root


def test_the_documented_commands_train_a_verifier_and_score_with_it(tmp_path, monkeypatch):
    data = tmp_path / "my_images"
    write_two_class_folder(data / "train", per_class=4)
    write_two_class_folder(data / "val", per_class=2)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["train.py"])
    # the config's command, shortened to one epoch of two small batches
    train.main(
        [
            "fit",
            "--config",
            str(CONFIG),
            "--data.init_args.root",
            str(data),
            "--model.init_args.num_classes",
            "2",
            "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2",
            "--trainer.enable_progress_bar=false",
            "--data.init_args.batch_size=4",
            "--data.init_args.image_size=32",
        ]
    )
    checkpoint = Path("runs/classifier/version_0/checkpoints/last.ckpt")
    assert checkpoint.is_file()
    common = [str(data / "val"), "--feature", "none", "--out", "results"]
    named = evaluate.main(["folder", *common, "--verifiers", f"mine={checkpoint}"])
    assert named["images"] == 4 and 0 <= named["top1_mine"] <= 1
    unnamed = evaluate.main(["folder", *common, "--verifiers", str(checkpoint)])
    assert unnamed["top1_classifier-v0-last"] == named["top1_mine"]
