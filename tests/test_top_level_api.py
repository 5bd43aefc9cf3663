"""The curated top-level API: every name in ``inversion.__all__`` resolves, lazily."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import inversion

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", inversion.__all__)
def test_every_public_name_resolves_to_its_family_object(name):
    value = getattr(inversion, name)
    assert value is not None and name in dir(inversion)
    home = inversion._LAZY.get(name)
    if home is not None:
        assert value is getattr(importlib.import_module(home), name)
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_names_are_unique_and_unknown_names_raise():
    assert len(set(inversion.__all__)) == len(inversion.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        inversion.nonexistent  # noqa: B018


def test_import_is_lazy_and_the_api_never_imports_lightning():
    script = """
import sys
import inversion
assert "inversion.class_inversion" not in sys.modules, "eager family import"
from inversion import PGD, build_classifier, find_pattern, train_stack
for name in inversion.__all__:
    getattr(inversion, name)
assert not any(m == "lightning" or m.startswith("lightning.") for m in sys.modules)
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_all_lists_exactly_the_lazy_names():
    assert inversion.__all__ == ["InversionError", *inversion._LAZY]
