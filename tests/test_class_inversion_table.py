"""The class-inversion table's fairness: equal passes per image for every recipe."""

import pytest

from benchmarks import class_inversion_table as table
from inversion.class_inversion import recipe_from


@pytest.mark.parametrize("recipe", list(table.OPTIONS))
def test_every_recipe_is_scaled_to_the_same_budget(recipe):
    scaled = table.scale_to_budget(recipe_from(recipe, table.OPTIONS[recipe]))
    assert table.passes_per_image(scaled) == table.BUDGET


def test_the_hook_counts_the_passes_the_budget_promises(monkeypatch, tmp_path):
    monkeypatch.setattr(table, "BUDGET", 28)  # PII: 7 stages x 1 step x ensemble 4
    for recipe in ("pii", "deepdream"):
        made = table.invert("digits:cnn", recipe, table.OPTIONS[recipe], seed=0, per_class=1)
        assert int(made["passes_per_image"]) == 28
        assert made["images"].shape == (10, 1, 32, 32)


def test_digits_recipes_do_not_flip():
    for recipe, options in table.OPTIONS.items():
        assert not recipe_from(recipe, options).flip, recipe


def test_a_retrained_zoo_model_keys_new_inversions(monkeypatch):
    from benchmarks import cells

    fields = table.cell_fields("digits:cnn", "pii", {}, 0, 2)
    assert fields["zoo"] == cells.zoo_keys(["digits:cnn"])
    before = cells.cell_key("class_inversion", fields)
    monkeypatch.setattr(table, "zoo_keys", lambda specs: {spec: "retrained" for spec in specs})
    after = table.cell_fields("digits:cnn", "pii", {}, 0, 2)
    assert cells.cell_key("class_inversion", after) != before
