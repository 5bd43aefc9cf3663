from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from inversion import InversionError, build_classifier
from inversion.data.digits import load_digits_split
from inversion.metrics import ClassifierFeatures, FrechetDistance
from inversion.training import accuracy
from inversion.visual import class_grid
from model_inversion import evaluate
from model_inversion.callbacks import ImageGrid, ImageMetrics, produced_images
from model_inversion.datamodules import DigitsDataModule
from model_inversion.lightning_modules import RealImages

REPO = Path(__file__).resolve().parents[1]
VERIFIERS = ["digits:vit", "digits:mlp"]


def _metrics() -> ImageMetrics:
    return ImageMetrics(
        verifiers=VERIFIERS, feature="digits:resnet", reference="digits:train", splits=5
    )


def _trainer(tmp_path: Path, callbacks, **kwargs) -> pl.Trainer:
    logger = pl.loggers.TensorBoardLogger(str(tmp_path), name="run")
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_metrics_and_grid_reach_tensorboard_and_png(tmp_path):
    metrics, grid = _metrics(), ImageGrid(per_class=4)
    trainer = _trainer(tmp_path, [metrics, grid])
    trainer.test(RealImages(), datamodule=DigitsDataModule(batch_size=100))

    images, labels = load_digits_split("test")
    for spec in VERIFIERS:  # the callback's top-1 is the verifier's accuracy on those images
        expected = accuracy(build_classifier(spec), images, labels)
        assert metrics.results["test"][f"top1_{spec.replace(':', '-')}"] == pytest.approx(
            expected, abs=1e-6
        )
    assert 0.0 < metrics.results["test"]["fid_digits-resnet"] < 5.0
    assert metrics.results["test"]["is_digits-resnet"] > 5.0

    events = EventAccumulator(trainer.log_dir, size_guidance={"images": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {
        "test/top1_digits-vit",
        "test/top5_digits-mlp",
        "test/top1_verifiers",
        "test/fid_digits-resnet",
        "test/is_digits-resnet",
        "hp/test/fid_digits-resnet",
    } <= scalars
    assert events.Scalars("test/top1_digits-vit")[-1].value == pytest.approx(
        metrics.results["test"]["top1_digits-vit"], abs=1e-6
    )
    assert "test/images" in events.Tags()["images"]
    png = grid.saved[0]
    assert png.is_file() and png.parent == Path(trainer.log_dir) / "images"
    width, height = Image.open(png).size
    # near-square: ten classes of four 64 px images, each class a 1 x 4 block, two to a row
    block_w, block_h = 4 * 66 + 2, 66 + 2
    assert (width, height) == (2 + 2 * (block_w + 2), 2 + 5 * (block_h + 2))


def test_fid_against_returned_reference_images(tmp_path):
    class WithReference(RealImages):
        def test_step(self, batch, batch_idx):
            return {"images": batch[0].flip(-1), "reference": batch[0]}

    metrics = ImageMetrics(feature="digits:cnn", inception_score=False)
    _trainer(tmp_path, [metrics]).test(WithReference(), datamodule=DigitsDataModule(batch_size=90))
    images, _ = load_digits_split("test")
    extractor, direct = ClassifierFeatures("digits:cnn"), FrechetDistance(128)
    with torch.no_grad():
        direct.update(extractor(images.flip(-1))[0])
        direct.update(extractor(images)[0], real=True)
    assert metrics.results["test"]["fid_digits-cnn"] == pytest.approx(
        float(direct.compute()), rel=1e-4
    )
    assert float(direct.compute()) > 0.5  # mirrored digits are far from real ones


def test_fid_without_reference_is_one_clear_error(tmp_path):
    metrics = ImageMetrics(feature="digits:cnn", inception_score=False)
    with pytest.raises(InversionError, match="FID needs reference images"):
        _trainer(tmp_path, [metrics]).test(RealImages(), datamodule=DigitsDataModule())


@pytest.mark.parametrize(
    ("outputs", "match"),
    [
        (torch.rand(2, 1, 8, 8), "got a Tensor"),
        ({"image": 1}, "keys \\['image'\\]"),
        ({"images": torch.rand(2, 8, 8)}, "shape \\(2, 8, 8\\)"),
        ({"images": torch.rand(2, 1, 8, 8), "labels": torch.zeros(3)}, "'labels' has shape"),
        ({"images": torch.rand(2, 1, 8, 8), "depths": [1]}, "'depths' is a list"),
        (
            {"images": torch.rand(2, 1, 8, 8), "depths": {"layer1": torch.rand(3, 1, 8, 8)}},
            "'depths'\\['layer1'\\] has 3 images, 'images' 2",
        ),
        ({"images": torch.rand(2, 1, 8, 8), "depths": {"a": torch.rand(2, 8)}}, "\\['a'\\]"),
    ],
)
def test_contract_violations_are_clear(outputs, match):
    with pytest.raises(InversionError, match=match):
        produced_images(outputs)
    assert produced_images(None) is None


def test_produced_images_keeps_the_contract_keys_only():
    images = torch.rand(2, 3, 8, 8)
    depths = {"layer1": torch.rand(2, 3, 16, 16), "layer2": torch.rand(2, 3, 8, 8)}
    outputs = {"images": images, "labels": torch.tensor([0, 1]), "originals": None}
    produced = produced_images({**outputs, "depths": depths, "index": torch.arange(2)})
    assert produced is not None
    assert set(produced) == {"images", "labels", "depths"}
    assert list(produced["depths"]) == ["layer1", "layer2"]  # column order kept


def test_class_grid_layout():
    images = torch.rand(7, 1, 8, 8)
    labels = torch.tensor([2, 0, 2, 0, 0, 5, 2])
    grid = class_grid(images, labels, per_row=3)
    assert grid.shape == (3, 3 * 10 + 2, 3 * 10 + 2)  # 3 classes x 3 columns, padding 2


def test_two_process_ddp_equals_one_process(tmp_path):
    def run(devices: int, strategy: str) -> dict:
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=devices,
            strategy=strategy,
            logger=False,
            callbacks=[
                ImageMetrics(
                    verifiers=VERIFIERS,
                    feature="digits:resnet",
                    reference="digits:train",
                    inception_score=False,
                )
            ],
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.test(RealImages(), datamodule=DigitsDataModule(batch_size=60))
        return {k: float(v) for k, v in trainer.callback_metrics.items()}

    single = run(1, "auto")
    double = run(2, "ddp_spawn")
    assert set(single) == set(double) and "test/fid_digits-resnet" in single
    for key, value in single.items():
        assert double[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_evaluate_run_scores_a_config_on_one_device(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["evaluate.py"])
    results = evaluate.main(
        [
            "run",
            "--config",
            str(REPO / "configs/digits/real_images.yaml"),
            "--out",
            str(tmp_path / "results"),
            "--name",
            "real-digits",
        ]
    )
    assert results["top1_digits-resnet"] > 0.95 and "fid_digits-resnet" in results
    table = (tmp_path / "results" / "results.md").read_text().splitlines()
    assert table[0].startswith("| run |") and table[-1].startswith("| real-digits |")
    assert (tmp_path / "results" / "real-digits.json").is_file()


def test_evaluate_folder_with_class_subfolders_and_labels_file(tmp_path):
    images, labels = load_digits_split("test")
    images, labels = images[:40], labels[:40]
    classes, flat = tmp_path / "classes", tmp_path / "flat"
    lines = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        pixels = (image[0] * 255).round().byte().numpy()
        (classes / str(int(label))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(classes / str(int(label)) / f"{i:03d}.png")
        flat.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(flat / f"{i:03d}.png")
        lines.append(f"{i:03d}.png,{int(label)}")
    (tmp_path / "labels.csv").write_text("\n".join(lines))
    quantised = (images * 255).round() / 255
    expected = accuracy(build_classifier("digits:vit"), quantised, labels)
    out = tmp_path / "out"
    common = ["--verifiers", "digits:vit", "--feature", "none", "--out", str(out)]
    by_folders = evaluate.main(["folder", str(classes), *common])
    by_file = evaluate.main(
        ["folder", str(flat), "--labels", str(tmp_path / "labels.csv"), *common]
    )
    assert by_folders["top1_digits-vit"] == pytest.approx(expected, abs=1e-6)
    assert by_file["top1_digits-vit"] == pytest.approx(expected, abs=1e-6)
    assert len((out / "results.md").read_text().splitlines()) == 4  # header, rule, 2 rows


def test_evaluate_bad_input_exits_with_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr("sys.argv", ["evaluate.py", "folder", str(tmp_path / "empty")])
    with pytest.raises(SystemExit) as info:
        evaluate.run_from_command_line()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: No images found") and "\n" not in err
