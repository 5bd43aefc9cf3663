"""The dominant-patterns table's plumbing: patterns cached per recipe and seed, and the
seed reaching the proxy data, the noise draws and the control (tiny settings)."""

import pytest
import torch

from benchmarks import cells
from benchmarks import dominant_patterns_table as table


def test_the_seed_and_the_zoo_recipe_key_a_pattern():
    recipe = table.PatternRecipe()
    fields = recipe.fields()
    assert fields["zoo"] == cells.zoo_keys([table.TARGET])
    other_seed = table.PatternRecipe(seed=1).fields()
    assert cells.cell_key(table.TABLE, fields) != cells.cell_key(table.TABLE, other_seed)


def test_the_seed_changes_the_noise_and_the_order_of_the_batches(monkeypatch):
    monkeypatch.setattr(table, "NOISE_IMAGES", 64)
    first = [b[0] for b in table.proxy_loader("noise", 0)]
    again = [b[0] for b in table.proxy_loader("noise", 0)]
    other = [b[0] for b in table.proxy_loader("noise", 1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    digits = [next(iter(table.proxy_loader("digits", seed)))[0] for seed in (0, 1)]
    assert not torch.equal(digits[0], digits[1])


def test_proxy_batches_run_epoch_after_epoch_in_a_new_order(monkeypatch):
    monkeypatch.setattr(table, "NOISE_IMAGES", 64)  # 2 full batches an epoch
    batches = list(table.proxy_batches("noise", 0, 5))
    assert len(batches) == 5 and all(b.shape == (table.BATCH, 1, 32, 32) for b in batches)
    first, second = torch.cat(batches[:2]), torch.cat(batches[2:4])
    assert not torch.equal(first, second)  # reshuffled
    as_set = lambda images: sorted(image.numpy().tobytes() for image in images)  # noqa: E731
    assert as_set(first) == as_set(second)  # the same images
    blank = list(table.proxy_batches("none", 0, 3))
    assert len(blank) == 3 and all(b.abs().sum() == 0 for b in blank)


def test_every_method_gets_the_steps_the_compute_budget_allows():
    budget = table.DOMINANT_STEPS * table.flops_per_step(table.TARGET, "dominant")
    counts = {}
    for objective in ("dominant", "sgd_uap", "cosine_uap", "gd_uap"):
        per_step = table.flops_per_step(table.TARGET, objective)
        counts[objective] = table.steps(table.TARGET, objective)
        assert counts[objective] * per_step <= budget < (counts[objective] + 1) * per_step
    assert counts["dominant"] == table.DOMINANT_STEPS
    # the UAPs add a gradient-free clean pass; GD-UAP passes the pattern alone
    assert counts["sgd_uap"] == counts["cosine_uap"] < counts["dominant"] < counts["gd_uap"]
    assert table.PatternRecipe(objective="sgd_uap").fields()["steps"] == counts["sgd_uap"]


def test_the_control_is_drawn_with_the_seed():
    a, b = table.control(16, 0).pattern, table.control(16, 1).pattern
    assert not torch.equal(a, b)
    assert torch.allclose(a.abs(), torch.full_like(a, 16 / 255))


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    table.model(table.TARGET)  # the zoo model, from the user's cache, before moving it
    monkeypatch.setenv("INVERSION_CACHE", str(tmp_path))
    monkeypatch.setattr(table, "NOISE_IMAGES", 64)  # 2 batches
    return tmp_path / "tables" / table.TABLE


def test_a_pattern_is_optimised_once_per_recipe_and_seed(tiny, monkeypatch):
    monkeypatch.setattr(table, "DOMINANT_STEPS", 2)
    recipes = [table.PatternRecipe(proxy="noise", seed=seed) for seed in (0, 1)]
    patterns = [table.pattern_for(recipe).pattern for recipe in recipes]
    assert len(list(tiny.glob("*.pt"))) == 2
    assert not torch.equal(patterns[0], patterns[1])
    assert all(p.abs().max() <= 16 / 255 + 1e-7 for p in patterns)
    monkeypatch.setattr(table, "optimise", lambda recipe: pytest.fail("not cached"))
    assert torch.equal(table.pattern_for(recipes[0]).pattern, patterns[0])


def test_claims_say_only_what_the_paired_intervals_allow():
    def cell(name, fooling, dominance=0.1):
        runs = [{"fooling_rate": f, "dominance": dominance} for f in fooling]
        return table.Cell(name, runs)

    names = [table.CONTROL, *table.METHODS]
    clear = {name: cell(name, [0.1, 0.11, 0.12]) for name in names}
    clear["dominant pattern on digits"] = cell("dominant pattern on digits", [0.5, 0.52, 0.55])
    lines = table.claims(clear)
    assert len(lines) == len(table.COMPARISONS)
    assert any("dominant pattern on digits beats random signs" in line for line in lines)
    assert any("no difference found between SGD-UAP on digits and random signs" in line
               for line in lines)  # fmt: skip


def test_the_lr_keys_a_pattern_and_the_default_lr_keeps_the_cached_cells():
    fields = table.PatternRecipe().fields()
    assert fields["lr"] == table.LR
    doubled = table.PatternRecipe(lr=2 * table.LR).fields()
    assert cells.cell_key(table.TABLE, fields) != cells.cell_key(table.TABLE, doubled)


@pytest.fixture
def sweep(monkeypatch):
    """pattern_for returns the recipe itself; the validation fooling rate depends on its lr."""
    rates = {0.25 * table.LR: 0.1, 0.5 * table.LR: 0.3, table.LR: 0.2, 2 * table.LR: 0.5,
             4 * table.LR: 0.4}  # fmt: skip
    asked: list[tuple[table.PatternRecipe, str]] = []

    def scores(spec, recipe, split="test"):
        asked.append((recipe, split))
        return {"fooling_rate": rates[recipe.lr]}

    monkeypatch.setattr(table, "pattern_for", lambda recipe: recipe)
    monkeypatch.setattr(table, "scores", scores)
    table.lr_sweep.cache_clear()
    yield asked
    table.lr_sweep.cache_clear()


def test_the_sweep_picks_the_best_validation_fooling_rate_at_the_tuning_seed(sweep):
    assert table.tuned_lr("sgd_uap", "noise", 10) == 2 * table.LR
    assert table.TUNING_SEED not in table.SEEDS
    # the best (2x) is on the first grid's edge: the grid widens to 4x, which is worse
    assert sorted(recipe.lr for recipe, _ in sweep) == [f * table.LR for f in (0.5, 1, 2, 4)]
    assert all(recipe.seed == table.TUNING_SEED and split == "val" for recipe, split in sweep)
    assert all((recipe.objective, recipe.proxy, recipe.eps) == ("sgd_uap", "noise", 10)
               for recipe, _ in sweep)  # fmt: skip


def test_every_seed_of_a_method_runs_at_its_tuned_lr(sweep):
    recipes = [table.method_pattern("SGD-UAP on noise", 10, seed) for seed in table.SEEDS]
    assert [r.lr for r in recipes] == [2 * table.LR] * len(table.SEEDS)
    assert [r.seed for r in recipes] == list(table.SEEDS)
    assert table.method_lr(table.CONTROL, 10) is None


@pytest.mark.parametrize(
    ("rates", "chosen"),
    [
        ((0.4, 0.4, 0.4), 1.0),
        ((0.5, 0.4, 0.5), 0.5),
        ((0.3, 0.4, 0.4), 1.0),
        ((0.1, 0.2, 0.3), 2.0),  # on the edge: 4x (0.2) is tried and is worse
    ],
)
def test_a_tie_keeps_the_default_lr_where_it_is_among_the_best(monkeypatch, rates, chosen):
    by_lr = dict(zip([f * table.LR for f in table.LR_FACTORS], rates, strict=True))
    by_lr |= {0.25 * table.LR: 0.2, 4 * table.LR: 0.2}  # the widened grid's edges: worse
    monkeypatch.setattr(table, "pattern_for", lambda recipe: recipe)
    monkeypatch.setattr(
        table, "scores", lambda spec, r, split="test": {"fooling_rate": by_lr[r.lr]}
    )
    table.lr_sweep.cache_clear()
    try:
        assert table.tuned_lr("dominant", "digits", 16) == chosen * table.LR
    finally:
        table.lr_sweep.cache_clear()
