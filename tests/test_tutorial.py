"""The plain-PyTorch tutorial (docs/tutorial.py) runs, writes its outputs to --out only."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = REPO / "docs" / "tutorial.py"
PICTURES = {
    "real_digits.png",
    "class_inversion_pii.png",
    "class_inversion_deepinversion.png",
    "representation_inversion_cnn.png",
    "representation_inversion_cnn-robust.png",
    "dominant_pattern.png",
    "conditioned_generator.png",
    "layerwise_inversion.png",
}
INVERTER = "inverter_stage1.pt2"
SECTIONS = [f"{number}. " for number in range(1, 8)]


def run_tutorial(cwd: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # this checkout's packages first, whatever is installed; run from another folder
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, str(TUTORIAL), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": path},
    )


def test_the_tutorial_uses_the_plain_pytorch_api_only():
    tree = ast.parse(TUTORIAL.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    lightning = {m for m in modules if m.split(".")[0] in ("lightning", "model_inversion")}
    assert not lightning, f"the tutorial imports the Lightning layer: {lightning}"
    assert "inversion" in modules


def test_an_out_that_is_a_file_is_one_error_line_and_exit_2(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    done = run_tutorial(tmp_path, "--out", str(taken), timeout=300)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "not a folder" in errors[0], done.stderr
    assert taken.read_text() == "not a folder"


@pytest.mark.slow
def test_the_tutorial_runs_and_writes_its_pictures_to_out_only(tmp_path):
    cwd, out = tmp_path / "cwd", tmp_path / "new" / "out"
    cwd.mkdir()
    done = run_tutorial(cwd, "--out", str(out), timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    positions = [done.stdout.find(section) for section in SECTIONS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), done.stdout
    assert {p.name for p in out.iterdir()} == PICTURES | {INVERTER}
    assert not any(cwd.iterdir()), "the tutorial wrote outside --out"
    for name in PICTURES:
        with Image.open(out / name) as image:
            pixels = np.asarray(image.convert("L"))
        assert min(pixels.shape) >= 60, name  # grids of 32 px images, upscaled
        assert pixels.std() > 5, f"{name} is blank"
    from inversion import load_exported_inverter

    inverter, metadata = load_exported_inverter(out / INVERTER)
    assert metadata["classifier"] == "digits:resnet" and metadata["layer"] == "stage1"
    features = torch.rand(3, *metadata["input_shape"])
    with torch.no_grad():
        images = inverter(features)
    assert images.shape == (3, 1, 32, 32) and 0 <= float(images.min()) <= float(images.max()) <= 1
