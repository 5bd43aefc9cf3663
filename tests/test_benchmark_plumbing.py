"""The statistics and the cell cache the digits tables are built on."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks import cells
from benchmarks.intervals import estimate, paired_difference, verdict
from inversion.errors import InversionError


def test_estimate_is_the_student_t_interval():
    result = estimate([1.0, 2.0, 3.0])
    assert result.mean == pytest.approx(2.0)
    assert result.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert result.format(2) == "2.00 ± 2.48"


def test_one_seed_has_no_interval_and_decides_nothing():
    result = estimate([0.5])
    assert math.isnan(result.half_width) and result.format(1) == "0.5"
    assert not result.excludes_zero()
    assert verdict("a", "b", result).startswith("no difference")


def test_verdict_needs_the_interval_of_the_difference_to_exclude_zero():
    clear = paired_difference([0.9, 0.8, 0.85], [0.5, 0.45, 0.5])
    assert verdict("a", "b", clear) == "a beats b"
    assert verdict("a", "b", clear, higher_is_better=False) == "b beats a"
    noisy = paired_difference([0.9, 0.1, 0.5], [0.5, 0.45, 0.5])
    assert verdict("a", "b", noisy).startswith("no difference")


def test_estimate_refuses_empty_and_non_finite_values():
    with pytest.raises(ValueError):
        estimate([])
    with pytest.raises(ValueError):
        estimate([1.0, math.nan])
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 2.0])


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("INVERSION_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "maths.py").write_text("A = 1\n")
    monkeypatch.setattr(cells, "ROOT", root)
    return root


def test_a_cell_is_computed_once_and_again_when_its_code_changes(repo):
    calls = []

    def compute():
        calls.append(1)
        return {"top1": 0.5}

    fields = {"method": "pii", "seed": 0}
    assert cells.cached_cell("t", fields, compute, ["pkg"]) == {"top1": 0.5}
    assert cells.cached_cell("t", fields, compute, ["pkg"]) == {"top1": 0.5}
    assert len(calls) == 1
    cells.cached_cell("t", {**fields, "seed": 1}, compute, ["pkg"])
    assert len(calls) == 2
    (repo / "pkg" / "maths.py").write_text("A = 2\n")
    cells.cached_cell("t", fields, compute, ["pkg"])
    assert len(calls) == 3


def test_comments_and_docstrings_do_not_change_the_digest(repo):
    code = 'def f(x):\n    """Doc."""\n    return x + 1\n'
    (repo / "pkg" / "maths.py").write_text(code)
    before = cells.source_digest(["pkg"])
    (repo / "pkg" / "maths.py").write_text(
        '"""Module doc."""\n# a comment\ndef f(x):\n'
        '    """Other doc."""\n\n    return x + 1  # why\n'
    )
    assert cells.source_digest(["pkg"]) == before
    (repo / "pkg" / "maths.py").write_text(code.replace("x + 1", "x + 2"))
    assert cells.source_digest(["pkg"]) != before


def test_non_finite_metrics_are_not_cached(repo):
    with pytest.raises(InversionError, match="non-finite"):
        cells.cached_cell("t", {"seed": 0}, lambda: {"fid": math.inf})
    assert not list((repo.parent / "cache").rglob("*.json"))


def test_a_corrupt_cell_is_named_with_what_to_do(repo):
    cells.cached_cell("t", {"seed": 0}, lambda: {"top1": 1.0})
    (path,) = (repo.parent / "cache" / "tables" / "t").glob("*.json")
    path.write_text(json.dumps({"fields": {}}))
    with pytest.raises(InversionError, match="delete it"):
        cells.cached_cell("t", {"seed": 0}, lambda: {"top1": 1.0})


def test_missing_sources_are_an_error(repo):
    with pytest.raises(FileNotFoundError):
        cells.source_digest(["nowhere"])


def test_tensors_are_cached_too(repo):
    import torch

    calls = []

    def compute():
        calls.append(1)
        return {"images": torch.ones(2, 1, 4, 4)}

    first = cells.cached_tensors("t", {"seed": 0}, compute, ["pkg"])
    second = cells.cached_tensors("t", {"seed": 0}, compute, ["pkg"])
    assert len(calls) == 1 and torch.equal(first["images"], second["images"])
    assert set(second) == {"images"}


def test_zoo_keys_change_with_the_zoo_recipe(monkeypatch):
    import dataclasses

    from benchmarks.cells import zoo_keys
    from inversion.models import zoo

    before = zoo_keys(["digits:cnn", "digits:cnn-robust"])
    assert before["digits:cnn"] != before["digits:cnn-robust"]
    retrained = dict(zoo.ZOO, cnn=dataclasses.replace(zoo.ZOO["cnn"], seed=99))
    monkeypatch.setattr(zoo, "ZOO", retrained)
    after = zoo_keys(["digits:cnn", "digits:cnn-robust"])
    assert after["digits:cnn"] != before["digits:cnn"]
    assert after["digits:cnn-robust"] == before["digits:cnn-robust"]


def test_step_flops_counts_forward_and_backward_of_a_linear_layer():
    import torch

    from benchmarks.compute import step_flops, steps_within

    layer = torch.nn.Linear(8, 4, bias=False)
    x = torch.rand(5, 8)
    forward = step_flops(lambda: layer(x))
    assert forward == 2 * 5 * 8 * 4  # a multiply and an add per weight per row
    x.requires_grad_(True)
    both = step_flops(lambda: layer(x).sum().backward())
    assert both == 3 * forward  # the backward pass: input and weight gradients
    frozen = layer.requires_grad_(False)
    assert step_flops(lambda: frozen(x).sum().backward()) == 2 * forward  # input only
    assert steps_within(10 * both + both // 2, both) == 10
    assert steps_within(1, both) == 1
    with pytest.raises(ValueError, match="no matrix product"):
        step_flops(lambda: torch.ones(3).sum())


def test_the_sweep_widens_at_its_edges_until_the_best_is_inside():
    from benchmarks import sweep

    tried = []

    def score(rate):  # best at 8: two widenings past the first grid's top
        tried.append(rate)
        return -abs(math.log2(rate / 8.0))

    scores = sweep.sweep(score, 1.0)
    assert sweep.pick(scores, 1.0) == 8.0 and not sweep.at_edge(scores, 1.0)
    assert sorted(tried) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    low = sweep.sweep(lambda rate: -rate, 1.0)  # lower is always better: stops at the limit
    assert min(low) == 0.5 / 2**sweep.MAX_WIDENINGS and sweep.at_edge(low, 1.0)
    inside = sweep.sweep(lambda rate: 1.0 - abs(rate - 1.0), 1.0)  # inside: no widening
    assert sweep.pick(inside, 1.0) == 1.0


def test_a_tie_keeps_the_default_else_the_lowest_best_rate():
    from benchmarks.sweep import pick

    assert pick({0.5: 1.0, 1.0: 1.0, 2.0: 0.5}, 1.0) == 1.0
    assert pick({0.5: 1.0, 1.0: 0.9, 2.0: 1.0}, 1.0) == 0.5
