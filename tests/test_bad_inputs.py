"""A catalogue of bad inputs through the command line: each is one ``error:`` line, exit 2.

Every case runs a script's command-line entry (``train.py``, ``evaluate.py``,
``generate.py``) with ``sys.argv`` set, in this process (cheap), and a few run as real
subprocesses. Each must exit with status 2, print exactly one line starting with
``error:`` that says what is wrong, and no traceback. Add a case for every bad input
that is fixed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inversion.conditioned_generator import ConditionedGenerator
from inversion.conditioned_generator.samples import GENERATOR_KEY
from inversion.errors import InversionError
from inversion.models.zoo import zoo_checkpoint, zoo_path
from model_inversion import evaluate, generate, train

REPO = Path(__file__).resolve().parents[1]
CLASSIFIER = str(REPO / "configs/digits/classifier.yaml")
CLASS_INVERSION = str(REPO / "configs/digits/class_inversion_pii.yaml")
QUIET = ["--trainer.logger=false", "--trainer.enable_progress_bar=false"]
CHEAP = ["--feature", "none", "--device", "cpu"]
SCRIPTS = {"train.py": train, "evaluate.py": evaluate, "generate.py": generate}


def write_folder(root: Path, classes: list[str], per_class: int = 2) -> Path:
    """Class subfolders of tiny gray PNGs (flat when ``classes`` is [""])."""
    rng = np.random.default_rng(0)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(16, 16), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every bad file and folder of the catalogue, made once."""
    root = tmp_path_factory.mktemp("bad")
    write_folder(root / "ten", [str(c) for c in range(10)])
    write_folder(root / "twelve", [str(c) for c in range(12)])
    write_folder(root / "one_two_ten", ["1", "2", "10"])
    write_folder(root / "seven_twice", ["7", "07"])
    (root / "empty").mkdir()
    (root / "not_images").mkdir()
    (root / "not_images" / "notes.txt").write_text("no images here")
    (root / "broken_png").mkdir()
    (root / "broken_png" / "a.png").write_bytes(b"not a png")
    (root / "labels.csv").write_text("0.png,3\n1.png,10\n")
    write_folder(root / "flat", [""])
    (root / "empty.pt").write_bytes(b"")
    (root / "garbage.pt").write_bytes(os.urandom(2000))
    (root / "text.pt").write_text("hello\n")
    (root / "garbage.safetensors").write_bytes(os.urandom(2000))
    torch.save({"a": torch.zeros(3)}, root / "random.pth")
    classifier = root / "classifier.ckpt"  # a classifier file, not a run's checkpoint
    torch.save(zoo_checkpoint("cnn"), classifier)
    data = classifier.read_bytes()
    (root / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    other_run = {"pytorch-lightning_version": "2.6.0", "state_dict": {"w": torch.zeros(1)}}
    torch.save(other_run, root / "other_run.ckpt")
    generator = ConditionedGenerator(10)
    run = {
        GENERATOR_KEY: {"num_classes": 10},
        "state_dict": {f"generator.{k}": v for k, v in generator.state_dict().items()},
    }
    torch.save(run, root / "generator.ckpt")
    (root / "a_file").write_text("keep me")
    (root / "bad.yaml").write_text("model: [unclosed\n")
    return root


@dataclass(frozen=True)
class Case:
    """One bad input: the script, its arguments (``{files}`` is the fixture folder), and a
    fragment the error line must contain."""

    script: str
    args: tuple[str, ...]
    says: str

    def argv(self, files: Path) -> list[str]:
        return [arg.replace("{files}", str(files)) for arg in self.args]


def fit(*args: str) -> tuple[str, ...]:
    return ("fit", "--config", CLASSIFIER, *QUIET, *args)


def validate_folder(folder: str, *args: str) -> tuple[str, ...]:
    return (
        "validate",
        "--config",
        CLASSIFIER,
        *QUIET,
        "--data=ImageFolderDataModule",
        f"--data.root={{files}}/{folder}",
        "--data.image_size=16",
        "--data.channels=1",
        *args,
    )


def score(folder: str, *args: str) -> tuple[str, ...]:
    return ("folder", f"{{files}}/{folder}", *CHEAP, "--out", "{files}/results", *args)


CASES: dict[str, Case] = {
    # train.py: numbers
    "num_classes 0": Case("train.py", fit("--model.init_args.num_classes=0"), "at least 2"),
    "num_classes -1": Case("train.py", fit("--model.init_args.num_classes=-1"), "at least 2"),
    "batch size 0": Case("train.py", fit("--data.init_args.batch_size=0"), "batch_size"),
    "num_workers -1": Case("train.py", fit("--data.init_args.num_workers=-1"), "num_workers"),
    "recipe typo": Case(
        "train.py", ("fit", "--config", CLASS_INVERSION, "--model.init_args.recipe=pi"), "recipe"
    ),
    "invalid yaml": Case(
        "train.py", ("fit", "--config", "{files}/bad.yaml"), "Problems parsing config"
    ),
    # train.py: classes
    "more class folders than classes": Case("train.py", validate_folder("twelve"), "12 classes"),
    "numbered folders past num_classes": Case(
        "train.py", validate_folder("one_two_ten", "--model.init_args.num_classes=3"), "up to 10"
    ),
    "targets past the classifier": Case(
        "train.py",
        ("fit", "--config", CLASS_INVERSION, *QUIET, "--data.init_args.num_classes=12"),
        "12 classes",
    ),
    "targets out of range": Case(
        "train.py",
        ("fit", "--config", CLASS_INVERSION, *QUIET, "--data.init_args.classes=[3,10]"),
        "outside 0..9",
    ),
    "empty folder": Case("train.py", validate_folder("empty"), "No images"),
    "folder of non-images": Case("train.py", validate_folder("not_images"), "No images"),
    "missing folder": Case("train.py", validate_folder("nowhere"), "does not exist"),
    "two folders of one class": Case("train.py", validate_folder("seven_twice"), "same class"),
    # train.py: weights and checkpoint files
    "weights missing": Case(
        "train.py", fit("--model.init_args.weights={files}/nowhere.pt"), "not found"
    ),
    "weights empty": Case("train.py", fit("--model.init_args.weights={files}/empty.pt"), "empty"),
    "weights truncated": Case(
        "train.py", fit("--model.init_args.weights={files}/truncated.ckpt"), "truncated"
    ),
    "weights garbage": Case(
        "train.py", fit("--model.init_args.weights={files}/garbage.pt"), "not a PyTorch file"
    ),
    "weights text": Case(
        "train.py", fit("--model.init_args.weights={files}/text.pt"), "not a PyTorch file"
    ),
    "weights corrupt safetensors": Case(
        "train.py", fit("--model.init_args.weights={files}/garbage.safetensors"), "safetensors"
    ),
    "weights of another network": Case(
        "train.py", fit("--model.init_args.weights={files}/random.pth"), "does not match"
    ),
    "classifier checkpoint truncated": Case(
        "train.py", fit("--model.init_args.classifier={files}/truncated.ckpt"), "truncated"
    ),
    "ckpt_path missing": Case("train.py", fit("--ckpt_path={files}/nowhere.ckpt"), "not found"),
    "ckpt_path empty": Case("train.py", fit("--ckpt_path={files}/empty.pt"), "empty"),
    "ckpt_path truncated": Case("train.py", fit("--ckpt_path={files}/truncated.ckpt"), "truncated"),
    "ckpt_path garbage": Case("train.py", fit("--ckpt_path={files}/garbage.pt"), "PyTorch file"),
    "ckpt_path not a run's": Case(
        "train.py", fit("--ckpt_path={files}/classifier.ckpt"), "not a checkpoint a training run"
    ),
    "ckpt_path of another model": Case(
        "train.py", fit("--ckpt_path={files}/other_run.ckpt"), "another model"
    ),
    # evaluate.py
    "evaluate out is a file": Case("evaluate.py", score("ten", "--out", "{files}/a_file"), "file"),
    "evaluate out inside a file": Case(
        "evaluate.py", score("ten", "--out", "{files}/a_file/results"), "file"
    ),
    "evaluate more classes than the verifier": Case(
        "evaluate.py", score("twelve", "--verifiers", "digits:cnn"), "out of range"
    ),
    "evaluate label out of range": Case(
        "evaluate.py",
        score("flat", "--labels", "{files}/labels.csv", "--verifiers", "digits:cnn"),
        "label 10",
    ),
    "evaluate empty folder": Case("evaluate.py", score("empty"), "No images"),
    "evaluate folder of non-images": Case("evaluate.py", score("not_images"), "No images"),
    "evaluate broken image": Case("evaluate.py", score("broken_png"), "Cannot read image"),
    "evaluate batch size 0": Case("evaluate.py", score("ten", "--batch-size", "0"), "at least 1"),
    "evaluate device that is not a device": Case(
        "evaluate.py", score("ten", "--device", "gpu"), "not a torch device"
    ),
    "evaluate device this machine lacks": Case(
        "evaluate.py", score("ten", "--device", "cuda:99"), "use --device cpu"
    ),
    "evaluate missing labels file": Case(
        "evaluate.py", score("flat", "--labels", "{files}/nowhere.csv"), "Labels file not found"
    ),
    "evaluate missing reference": Case(
        "evaluate.py",
        ("folder", "{files}/ten", "--feature", "digits:cnn", "--reference", "{files}/nowhere"),
        "does not exist",
    ),
    "evaluate no subcommand": Case("evaluate.py", (), "required"),
    "evaluate unknown verifier": Case(
        "evaluate.py", score("ten", "--verifiers", "digitz:cnn"), "Unknown classifier spec"
    ),
    "evaluate wrong inception weights": Case(
        "evaluate.py",
        ("folder", "{files}/ten", "--inception-weights", "{files}/random.pth"),
        "not torch-fidelity's InceptionV3",
    ),
    "evaluate garbage inception weights": Case(
        "evaluate.py",
        ("folder", "{files}/ten", "--inception-weights", "{files}/garbage.pt"),
        "not a PyTorch file",
    ),
    "evaluate run missing config": Case(
        "evaluate.py", ("run", "--config", "{files}/nowhere.yaml", *CHEAP), "not found"
    ),
    "evaluate run truncated checkpoint": Case(
        "evaluate.py",
        ("run", "--config", CLASSIFIER, "--ckpt", "{files}/truncated.ckpt", *CHEAP),
        "truncated",
    ),
    "evaluate run checkpoint not a run's": Case(
        "evaluate.py",
        ("run", "--config", CLASSIFIER, "--ckpt", "{files}/classifier.ckpt", *CHEAP),
        "not a checkpoint a training run",
    ),
    # generate.py
    "generate missing checkpoint": Case(
        "generate.py", ("--ckpt", "{files}/nowhere.ckpt", "--out", "{files}/g"), "not found"
    ),
    "generate garbage checkpoint": Case(
        "generate.py", ("--ckpt", "{files}/garbage.pt", "--out", "{files}/g"), "PyTorch file"
    ),
    "generate classifier checkpoint": Case(
        "generate.py",
        ("--ckpt", "{files}/classifier.ckpt", "--out", "{files}/g"),
        "not a checkpoint of ConditionedGeneratorInversion",
    ),
    "generate class out of range": Case(
        "generate.py",
        ("--ckpt", "{files}/generator.ckpt", "--out", "{files}/g", "--classes", "3", "10"),
        "outside 0..9",
    ),
    "generate per-class 0": Case(
        "generate.py",
        ("--ckpt", "{files}/generator.ckpt", "--out", "{files}/g", "--per-class", "0"),
        "at least 1",
    ),
    "generate out is a file": Case(
        "generate.py", ("--ckpt", "{files}/generator.ckpt", "--out", "{files}/a_file"), "a file"
    ),
}
CASES["missing config"] = Case("train.py", ("fit", "--config", "{files}/nowhere.yaml"), "nowhere")
# real processes, one per script (each costs seconds of imports)
SUBPROCESS = {"ckpt_path truncated", "evaluate out is a file", "generate classifier checkpoint"}


def assert_one_error_line(returncode: int | str | None, stderr: str, says: str) -> None:
    """Exit 2, no traceback, exactly one ``error:`` line, and it says ``says``."""
    assert returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert says in errors[0], errors[0]


def run_in_process(
    entry: Callable[[], None], argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> int | str | None:
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        entry()
    return exit_info.value.code


@pytest.mark.parametrize("name", sorted(set(CASES) - SUBPROCESS))
def test_bad_input_is_one_error_line(name, files, tmp_path, monkeypatch, capsys):
    case = CASES[name]
    monkeypatch.chdir(tmp_path)
    entry = SCRIPTS[case.script].run_from_command_line
    code = run_in_process(entry, [case.script, *case.argv(files)], monkeypatch)
    assert_one_error_line(code, capsys.readouterr().err, case.says)


def test_bad_inputs_in_real_processes(files, tmp_path):
    """The same through ``python SCRIPT ...``, one per script, run side by side."""
    running = {
        name: subprocess.Popen(
            [sys.executable, str(REPO / CASES[name].script), *CASES[name].argv(files)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for name in sorted(SUBPROCESS)
    }
    for name, process in running.items():
        _, stderr = process.communicate(timeout=300)
        assert_one_error_line(process.returncode, stderr, CASES[name].says)


def test_corrupt_cache_file_is_named_with_what_to_do(files, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INVERSION_CACHE", str(tmp_path / "cache"))
    broken = zoo_path("cnn")
    broken.parent.mkdir(parents=True)
    broken.write_bytes(files.joinpath("truncated.ckpt").read_bytes())
    argv = ["evaluate.py", *score("ten", "--verifiers", "digits:cnn")]
    code = run_in_process(
        evaluate.run_from_command_line,
        [a.replace("{files}", str(files)) for a in argv],
        monkeypatch,
    )
    err = capsys.readouterr().err
    assert_one_error_line(code, err, str(broken))
    assert "delete it" in err


def test_out_that_is_a_file_is_refused_before_any_scoring(files, monkeypatch, capsys):
    def no_scoring(*args, **kwargs):
        raise AssertionError("scored before checking --out")

    monkeypatch.setattr(evaluate, "scorer_from_args", no_scoring)
    monkeypatch.setattr(evaluate, "folder_labels", no_scoring)
    argv = [a.replace("{files}", str(files)) for a in score("ten", "--out", "{files}/a_file")]
    code = run_in_process(evaluate.run_from_command_line, ["evaluate.py", *argv], monkeypatch)
    assert_one_error_line(code, capsys.readouterr().err, "existing file")
    assert (files / "a_file").read_text() == "keep me"


def test_a_name_that_climbs_out_stays_inside_out(files, tmp_path):
    out = tmp_path / "out"
    evaluate.main(
        [
            *(a.replace("{files}", str(files)) for a in score("flat")),
            "--out",
            str(out),
            "--name",
            "../../escaped",
        ]
    )
    written = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.parts[0] == "out" for p in written)


def test_the_catalogue_covers_every_script():
    assert {case.script for case in CASES.values()} == set(SCRIPTS)
    assert {CASES[name].script for name in SUBPROCESS} == set(SCRIPTS)


def test_a_corrupt_fid_reference_cache_file_is_named_with_what_to_do(tmp_path, monkeypatch):
    from inversion.metrics.features import ClassifierFeatures
    from inversion.metrics.reference import reference_statistics

    extractor = ClassifierFeatures("digits:cnn")  # from the normal zoo cache
    monkeypatch.setenv("INVERSION_CACHE", str(tmp_path / "cache"))
    reference_statistics(extractor, "digits:val", progress=False)
    (cached,) = (tmp_path / "cache" / "fid_reference").glob("*.pt")
    cached.write_bytes(cached.read_bytes()[:100])
    with pytest.raises(InversionError, match="delete it"):
        reference_statistics(extractor, "digits:val", progress=False)
