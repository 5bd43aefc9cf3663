"""Loading files safely: a tampered file is refused and never runs code."""

import json
import os
import pickle
import zipfile

import pytest
import torch

from inversion import InversionError, build_classifier
from inversion.layerwise import InverterStack, export_inverter, load_exported_inverter
from inversion.models.split import split_classifier


class RunsCode:
    """Unpickles to ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def rewrite_zip(source, target, replace):
    """Copy a zip archive, with ``replace(name, data)`` giving each member's new bytes."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info, replace(info.filename, old.read(info.filename)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = build_classifier("digits:cnn").freeze()
    blocks = split_classifier(model, ["stem", "stage1", "stage2"], (1, 32, 32))
    stack = InverterStack(blocks.shapes).eval()
    with torch.no_grad():
        for parameter in stack.parameters():
            parameter.normal_(0, 0.1)
    path = export_inverter(stack, 2, tmp_path_factory.mktemp("export") / "inv.pt2", {"layer": "x"})
    return stack, blocks, path


def test_genuine_export_loads_with_the_same_outputs(exported):
    stack, blocks, path = exported
    module, meta = load_exported_inverter(path)
    features = blocks(torch.rand(3, 1, 32, 32), depth=2)
    with torch.no_grad():
        torch.testing.assert_close(module(features), stack(features, 2))
    assert meta["layer"] == "x" and meta["input_shape"] == [32, 16, 16]


def tampered(path, tmp_path, which):
    marker = tmp_path / "marker"
    evil = pickle.dumps(RunsCode(f"touch {marker}"), protocol=2)

    def replace(name, data):
        if which == "sample_inputs" and name.endswith("data/sample_inputs/model.pt"):
            return evil
        if which == "weights" and name.endswith("model_weights_config.json"):
            config = json.loads(data)
            first = next(iter(config["config"].values()))
            first["use_pickle"] = True
            return json.dumps(config).encode()
        if which == "weights" and name.endswith("data/weights/weight_0"):
            return evil
        return data

    bad = tmp_path / "bad.pt2"
    rewrite_zip(path, bad, replace)
    return bad, marker


@pytest.mark.parametrize("which", ["sample_inputs", "weights"])
def test_tampered_export_is_refused_without_running_code(exported, tmp_path, which):
    bad, marker = tampered(exported[2], tmp_path, which)
    with pytest.raises(InversionError, match="Cannot load the exported inverter"):
        load_exported_inverter(bad)
    assert not marker.exists(), "loading the file ran code"


def test_export_without_architecture_is_refused(exported, tmp_path):
    def replace(name, data):
        if name.endswith("extra/inverter.json"):
            meta = json.loads(data)
            del meta["architecture"]
            return json.dumps(meta).encode()
        return data

    bad = tmp_path / "old.pt2"
    rewrite_zip(exported[2], bad, replace)
    with pytest.raises(InversionError, match="architecture"):
        load_exported_inverter(bad)


def test_not_an_archive_is_refused(tmp_path):
    bad = tmp_path / "x.pt2"
    bad.write_text("hello")
    with pytest.raises(InversionError, match="not a readable"):
        load_exported_inverter(bad)
