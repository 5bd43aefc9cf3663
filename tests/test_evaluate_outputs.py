"""evaluate.py through its command line: safe checkpoints, results kept inside --out."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CHEAP = ["--feature", "none", "--no-is", "--device", "cpu"]


class RunsCode:
    """Unpickles to ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def evaluate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, str(REPO / "evaluate.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def assert_one_error(result: subprocess.CompletedProcess, match: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and match in errors[0], result.stderr


def image_folder(path: Path, count: int = 2) -> Path:
    path.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(path / f"{i}.png")
    return path


def test_checkpoint_with_other_pickled_objects_is_refused(tmp_path):
    marker = tmp_path / "marker"
    ckpt = tmp_path / "evil.ckpt"
    ckpt.write_bytes(pickle.dumps({"state_dict": {}, "x": RunsCode(f"touch {marker}")}))
    result = evaluate(
        "run",
        "--config",
        str(REPO / "configs/digits/real_images.yaml"),
        "--ckpt",
        str(ckpt),
        "--out",
        str(tmp_path / "out"),
        *CHEAP,
        cwd=tmp_path,
    )
    assert_one_error(result, "weights_only")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_out_that_is_a_file_fails_before_scoring(tmp_path):
    image_folder(tmp_path / "images")
    (tmp_path / "taken").write_text("keep me")
    result = evaluate("folder", "images", "--out", "taken", *CHEAP, cwd=tmp_path)
    assert_one_error(result, "is an existing file")
    assert "scoring" not in result.stderr and (tmp_path / "taken").read_text() == "keep me"


@pytest.mark.parametrize("name", ["../escaped", "/tmp/evaluate-escape-test", "a/../../b"])
def test_name_stays_inside_out(tmp_path, name):
    work = tmp_path / "work"
    image_folder(work / "images")
    result = evaluate("folder", "images", "--out", "out", "--name", name, *CHEAP, cwd=work)
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (work / "out").iterdir())
    assert len(written) == 2 and "results.md" in written, written
    assert sorted(p.name for p in work.iterdir()) == ["images", "out"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert not Path("/tmp/evaluate-escape-test.json").exists()


def test_name_cannot_inject_table_rows(tmp_path):
    image_folder(tmp_path / "images")
    result = evaluate(
        "folder", "images", "--out", "out", "--name", "x | 1 |\n| fake | 999", *CHEAP, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "out" / "results.md").read_text().splitlines()
    assert len(rows) == 3 and "fake" not in rows[0] + rows[1]
    assert rows[2].count(" | ") == 7, rows[2]  # eight cells, the name one of them


def test_default_names_do_not_overwrite(tmp_path):
    for run in ("a", "b"):
        image_folder(tmp_path / run / "images")
    for folder in ("a/images", "b/images", "a/images"):
        result = evaluate("folder", folder, "--out", "out", *CHEAP, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "out").glob("*.json"))
    assert written == ["a_images-2.json", "a_images.json", "b_images.json"]
    names = [json.loads((tmp_path / "out" / f).read_text())["name"] for f in written]
    assert len(set(names)) == 3
    rows = (tmp_path / "out" / "results.md").read_text().splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| a_images", "| b_images", "| a_images-2"]
