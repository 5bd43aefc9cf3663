"""Short, unique metric names for classifier specs (inversion/metrics/names.py)."""

from pathlib import Path

import pytest
import torch
from trainers import quiet_trainer

from inversion import InversionError, build_classifier
from inversion.metrics.features import ClassifierFeatures
from inversion.metrics.names import short_name, split_named_spec, unique_names
from inversion.metrics.scorer import ImageScorer
from model_inversion.datamodules import DigitsDataModule
from model_inversion.lightning_modules import ClassifierModule

LAST = "/tmp/x/runs/version_3/checkpoints/last.ckpt"


def test_a_lightning_checkpoint_path_gives_a_short_readable_name():
    assert short_name(LAST) == "runs-v3-last"
    assert short_name("runs/shapes/version_0/checkpoints/epoch=3-step=100.ckpt") == (
        "shapes-v0-epoch-3-step-100"
    )
    assert short_name("models/mine.pt") == "mine"
    assert short_name("digits:resnet") == "digits-resnet"
    assert short_name("timm:vit_small_patch16_224") == "timm-vit-small-patch16-224"


def test_specs_with_the_same_stem_get_distinct_names():
    names = unique_names(["/data/a/model.ckpt", "/data/b/model.ckpt", "digits:cnn"])
    assert list(names) == ["a-model", "b-model", "digits-cnn"]
    assert list(names.values()) == ["/data/a/model.ckpt", "/data/b/model.ckpt", "digits:cnn"]
    runs = [
        "runs/shapes/version_0/checkpoints/last.ckpt",
        "runs/shapes/version_1/checkpoints/last.ckpt",
        "other/shapes/version_0/checkpoints/last.ckpt",
    ]
    names = unique_names(runs)
    assert len(set(names)) == 3 and list(names.values()) == runs
    assert "shapes-v1-last" in names and all(len(n) <= len("other-shapes-v0-last") for n in names)
    # the same spec twice is numbered, and a reserved name is never given
    assert list(unique_names(["digits:cnn", "digits:cnn"])) == ["digits-cnn", "digits-cnn-2"]
    assert list(unique_names(["x/verifiers.ckpt"], reserved=["verifiers"])) == ["x-verifiers"]
    assert list(unique_names(["verifiers.pt"], reserved=["verifiers"])) == ["verifiers-2"]


def test_explicit_names_and_lightning_file_names(tmp_path, monkeypatch):
    assert split_named_spec(f"mine={LAST}") == ("mine", LAST)
    assert split_named_spec("vit=digits:vit") == ("vit", "digits:vit")
    assert split_named_spec("digits:vit") == (None, "digits:vit")
    # Lightning's own file names contain '=': a file, not a name
    monkeypatch.chdir(tmp_path)
    Path("epoch=3-step=100.ckpt").touch()
    assert split_named_spec("epoch=3-step=100.ckpt") == (None, "epoch=3-step=100.ckpt")
    assert split_named_spec("runs/epoch=3.ckpt") == (None, "runs/epoch=3.ckpt")
    names = unique_names(["last=digits:cnn", "x/last.ckpt", "last.ckpt"])
    assert names == {"last": "digits:cnn", "x-last": "x/last.ckpt", "last-2": "last.ckpt"}
    with pytest.raises(InversionError, match="named 'a'"):
        unique_names(["a=digits:cnn", "a=digits:vit"])
    with pytest.raises(InversionError, match="reserved"):
        unique_names(["verifiers=digits:cnn"], reserved=["verifiers"])


def save_as_checkpoint(path: Path) -> str:
    """A classifier checkpoint file of this project's format, written by a tiny fit."""
    module = ClassifierModule(classifier="digits:cnn", pretrained=True, lr=0.0)
    trainer = quiet_trainer(max_steps=1, limit_val_batches=0)
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=8))
    path.parent.mkdir(parents=True)
    trainer.save_checkpoint(path)
    return str(path)


def test_verifier_and_feature_metric_keys_are_short(tmp_path):
    first = save_as_checkpoint(tmp_path / "runs/shapes/version_3/checkpoints/last.ckpt")
    second = save_as_checkpoint(tmp_path / "runs/colours/version_3/checkpoints/last.ckpt")
    scorer = ImageScorer(
        verifiers=[first, second, f"mine={first}", "digits:mlp"],
        feature=f"feat={first}",
        fid=False,
        splits=1,
    )
    images, labels = torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 3])
    scorer.update(images, labels)
    results = scorer.compute()
    top1 = sorted(k for k in results if k.startswith("top1_"))
    assert top1 == [
        "top1_colours-v3-last",
        "top1_digits-mlp",
        "top1_mine",
        "top1_shapes-v3-last",
        "top1_verifiers",
    ]
    assert results["top1_mine"] == results["top1_shapes-v3-last"]  # the same network
    assert "is_feat" in results
    assert ClassifierFeatures(second).name == "colours-v3-last"
    assert build_classifier(first).num_classes == 10
