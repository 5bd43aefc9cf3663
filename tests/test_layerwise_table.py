"""The layer-wise table's plumbing: cells per recipe and seed, and the claims they allow.

Tiny settings (one block, a step or two) and a temporary table cache: no table run.
"""

from pathlib import Path

import pytest

import benchmarks.cells
from benchmarks import layerwise_table as table
from benchmarks.intervals import SEEDS

TINY = {"block_steps": 1, "resync_steps": 1, "naive_steps": 2, "stack_depth": 1}


@pytest.fixture
def cells(monkeypatch, tmp_path) -> Path:
    """An empty table cache (the zoo stays in the normal one)."""
    monkeypatch.setattr(benchmarks.cells, "cache_dir", lambda: tmp_path)
    return tmp_path / "tables" / table.TABLE


def test_a_cell_is_trained_once_per_seed_and_the_seed_changes_it(cells):
    first = table.score("smooth", "layerwise", 1, 0, **TINY)
    files = sorted(cells.iterdir())
    assert table.score("smooth", "layerwise", 1, 0, **TINY) == first
    assert sorted(cells.iterdir()) == files  # read back, not trained again
    other = table.score("smooth", "layerwise", 1, 1, **TINY)
    assert other["psnr"] != first["psnr"]  # another initialisation and other noise
    assert {"psnr", "ssim", "agree", "agree_verifier", "seconds"} <= set(first)


def test_the_blockwise_row_reads_the_stack_the_layerwise_row_resyncs(cells):
    table.score("smooth", "blockwise", 1, 0, **TINY)
    stacks = {p for p in cells.iterdir() if p.suffix == ".pt"}
    table.score("smooth", "layerwise", 1, 0, **TINY)
    assert len({p for p in cells.iterdir() if p.suffix == ".pt"} - stacks) == 1  # the re-sync


def test_a_cell_is_keyed_by_its_seed_and_the_zoo_recipe_it_inverts():
    fields = table.Recipe("smooth", seed=2).fields()
    assert fields["seed"] == 2
    assert set(fields["zoo"]) == {table.TARGET}
    assert fields["layers"] == list(table.LAYERS[: table.Recipe().depth])


def _runs(value, depths) -> dict[int, list[dict[str, float]]]:
    metrics = ("psnr", "ssim", "agree", "agree_verifier", "seconds")
    return {d: [{m: value(seed) for m in metrics} for seed in SEEDS] for d in depths}


def test_claims_say_beats_only_where_the_paired_interval_excludes_zero():
    def rows(value_of_method):
        main = {}
        for source in table.SOURCES:
            full = source in table.FULL_SOURCES
            depths = table.MAIN_DEPTHS if full else table.WHITE_DEPTHS
            for method in table.METHODS if full else ("layerwise",):
                main[source, method] = _runs(lambda s, m=method: value_of_method(m, s), depths)
        ablation = {
            name: {m: _runs(lambda s, m=m: value_of_method(m, s), [1])[1] for m in table.METHODS}
            for name in table.ABLATIONS
        }
        names = {"layerwise": "layerwise", "blockwise": "blockwise"}
        names[f"naive, {table.DEEP_NAIVE_STEPS} steps"] = "naive"
        deep = {
            name: _runs(lambda s, m=method: value_of_method(m, s), table.DEEP_DEPTHS)
            for name, method in names.items()
        }
        return main, ablation, deep

    # layer-wise ahead by 2 + seed / 10: a consistent gain; the others equal at every seed
    lines = table.claims(*rows(lambda m, s: 0.5 + (2 + s / 10 if m == "layerwise" else 0)))
    assert "- smooth, from `stage2`, PSNR: layerwise beats naive" in [
        line.split(" (")[0] for line in lines
    ]
    assert all("beats" not in line for line in lines if line.startswith("- ablation"))
    # a difference that changes sign with the seed is no claim
    noisy = table.claims(*rows(lambda m, s: 0.5 + ((s - 1) if m == "layerwise" else 0)))
    assert not [line for line in noisy if "beats" in line]
