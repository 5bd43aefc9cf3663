"""The layer-wise table's plumbing: cells per recipe and seed, and the claims they allow.

Tiny settings (one block, a step or two) and a temporary table cache: no table run.
"""

from pathlib import Path

import pytest

import benchmarks.cells
from benchmarks import layerwise_table as table
from benchmarks.cells import cell_key
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
        deep = {
            method: _runs(lambda s, m=method: value_of_method(m, s), table.DEEP_DEPTHS)
            for method in table.METHODS
        }
        return main, ablation, deep

    # layer-wise ahead by 2 + seed / 10: a consistent gain; the others equal at every seed
    lines = table.claims(*rows(lambda m, s: 0.5 + (2 + s / 10 if m == "layerwise" else 0)))
    assert "- smooth, from `stage2`, PSNR: layerwise beats naive" in [
        line.split(" (")[0] for line in lines
    ]
    assert all("beats" not in line for line in lines if line.startswith("- ablation"))
    assert "- deep target from `stage3.2`, PSNR: layerwise beats naive" in [
        line.split(" (")[0] for line in lines
    ]
    # a difference that changes sign with the seed is no claim
    noisy = table.claims(*rows(lambda m, s: 0.5 + ((s - 1) if m == "layerwise" else 0)))
    assert not [line for line in noisy if "beats" in line]


def test_the_naive_decoder_gets_the_layer_wise_compute_at_each_depth():
    recipes = [table.recipe_of("smooth", "naive", d, 0, batch=2) for d in table.MAIN_DEPTHS]
    steps = [recipe.naive_steps for recipe in recipes]
    assert steps == sorted(set(steps))  # more steps from deeper cuts
    for recipe in recipes:
        budget, step = table.layerwise_flops(recipe), table.naive_step_flops(recipe)
        assert 0 <= budget - recipe.naive_steps * step < step  # within one step
        assert table.blockwise_flops(recipe) < budget
    assert table.recipe_of("smooth", "naive", 2, 0, naive_steps=7).naive_steps == 7


def test_a_default_recipe_keeps_its_key_and_a_learning_rate_changes_it():
    old_fields = {
        "source", "method", "depth", "block", "weights", "block_steps", "resync_steps",
        "naive_steps", "batch", "seed", "stack_depth", "target", "layers", "synthesis", "zoo",
    }  # fmt: skip
    default = table.Recipe().fields()
    assert set(default) == old_fields  # the key the cached cells were written with
    assert table.Recipe(lr=table.LR, resync_lr=table.RESYNC_LR).fields() == default
    for changed in ({"lr": 2 * table.LR}, {"resync_lr": 0.5 * table.RESYNC_LR}):
        fields = table.Recipe(**changed).fields()
        assert cell_key(table.TABLE, fields) != cell_key(table.TABLE, default)
    # the blockwise and naive rows do not use the re-sync lr: it does not key them
    for method in ("blockwise", "naive"):
        recipe = table.recipe_of("smooth", method, 1, 0, resync_lr=1.0, naive_steps=2)
        assert "resync_lr" not in recipe.fields()


@pytest.fixture
def sweep(monkeypatch):
    """The validation PSNR of a (fake) inverter depends on its method, depth and lrs."""
    calls = []

    def psnr(source, method, depth, seed, split="test", **lrs):
        calls.append((method, depth, seed, split, lrs))
        if method == "blockwise":
            return {"psnr": {0.5: 10.0, 1.0: 11.0, 2.0: 10.5}[lrs["lr"] / table.LR] + depth}
        if method == "layerwise":
            best = 0.5 if depth < 3 else 2.0  # the best re-sync factor moves with depth
            return {"psnr": 20.0 - abs(lrs["resync_lr"] / table.RESYNC_LR - best)}
        return {"psnr": 15.0 + lrs["lr"] / table.LR}  # naive: the largest lr, past the grid

    monkeypatch.setattr(table, "score", psnr)
    table.tuned_lrs.cache_clear()
    yield calls
    table.tuned_lrs.cache_clear()


def test_the_sweep_picks_the_best_validation_psnr_at_the_tuning_seed(sweep):
    tuned = table.tuned_lrs("smooth")
    assert tuned.lr == table.LR
    assert tuned.resync == {d: (0.5 if d < 3 else 2.0) * table.RESYNC_LR for d in table.MAIN_DEPTHS}
    # the naive decoder's best is past the grid: it widens up to its limit (2 x 2**3)
    assert tuned.naive == dict.fromkeys(table.MAIN_DEPTHS, 16 * table.LR)
    assert tuned.at_limit == tuple(f"naive from `{layer}`" for layer in table.LAYERS[:4])
    assert {(seed, split) for _, _, seed, split, _ in sweep} == {(table.TUNING_SEED, "val")}
    assert table.TUNING_SEED not in SEEDS
    resyncs = [lrs for method, _, _, _, lrs in sweep if method == "layerwise"]
    assert all(lrs["lr"] == tuned.lr for lrs in resyncs)  # on the tuned stack


def test_every_row_runs_at_the_learning_rates_tuned_for_it(sweep):
    assert table.lr_overrides("smooth", "layerwise", 4) == {
        "lr": table.LR,
        "resync_lr": 2 * table.RESYNC_LR,
    }
    assert table.lr_overrides("smooth", "naive", 10) == {"lr": 16 * table.LR}  # the deepest
    assert table.lr_overrides("smooth", "blockwise", 1) == {"lr": table.LR}
