"""The conditioned-generator table's plumbing: cells keyed by the zoo and the seed, claims."""

import pytest
import torch

from benchmarks import cells
from benchmarks import conditioned_generator_table as table
from benchmarks.cells import cell_key


def test_a_cell_is_keyed_by_the_targets_zoo_recipe_and_the_seed(monkeypatch):
    key = cell_key(table.TABLE, table.cell_fields("digits:cnn", table.DEFAULTS, 0))
    assert key != cell_key(table.TABLE, table.cell_fields("digits:cnn", table.DEFAULTS, 1))
    assert key != cell_key(table.TABLE, table.cell_fields("digits:cnn", table.PLAIN, 0))
    monkeypatch.setattr(table, "zoo_keys", lambda specs: {s: "retrained" for s in specs})
    assert key != cell_key(table.TABLE, table.cell_fields("digits:cnn", table.DEFAULTS, 0))


def test_rows_that_resolve_to_the_same_recipe_share_their_cells():
    defaults = table.cell_fields("digits:cnn", table.DEFAULTS, 0)
    spelled_out = table.cell_fields("digits:cnn", {"conditioning": "matrix", "dropout": 0.5}, 0)
    assert cell_key(table.TABLE, defaults) == cell_key(table.TABLE, spelled_out)


def test_a_trained_generator_is_cached_per_seed_and_reloads_exactly(monkeypatch, tmp_path):
    monkeypatch.setattr(cells, "cache_dir", lambda: tmp_path)  # the zoo stays where it is
    monkeypatch.setattr(table, "STEPS", 2)
    trainings = []
    train = table._train
    monkeypatch.setattr(table, "_train", lambda *a: trainings.append(a) or train(*a))
    first = table.trained_generator("digits:cnn", table.DEFAULTS, 0)
    again = table.trained_generator("digits:cnn", table.DEFAULTS, 0)
    other = table.trained_generator("digits:cnn", table.DEFAULTS, 1)
    assert len(trainings) == 2  # seed 0 once, seed 1 once
    assert torch.equal(table.draw(first, 0)[0], table.draw(again, 0)[0])
    weights = dict(first.named_parameters())
    assert any(not torch.equal(weights[n], p) for n, p in other.named_parameters())
    assert len(list((tmp_path / "tables" / table.TABLE).glob("*.pt"))) == 2


def _cell(label: str, top1: list[float], cosine: list[float]) -> table.Cell:
    runs = [
        {"top1_verifiers": t, "feature_cosine": c, "pixel_distance": 0.2 + i / 100,
         "fid_digits-resnet": 50.0, "target_top1": 0.9}
        for i, (t, c) in enumerate(zip(top1, cosine, strict=True))
    ]  # fmt: skip
    return table.Cell("digits:cnn", label, runs)


def test_ablation_claims_follow_the_paired_intervals():
    defaults = _cell("defaults", [0.50, 0.55, 0.45], [0.90, 0.92, 0.91])
    better = _cell("better", [0.60, 0.66, 0.54], [0.95, 0.97, 0.96])  # +0.10 on every seed
    noisy = _cell("noisy", [0.60, 0.50, 0.40], [0.90, 0.92, 0.91])
    lines = table.ablation_claims([better, defaults, noisy])
    assert len(lines) == 2 * len(table.CLAIMED)
    assert "- verifier top-1: better beats defaults (" in lines[0]
    assert "- feature cosine: defaults beats better (" in lines[1]  # lower is better
    assert "- FID: no difference found between better and defaults (" in lines[3]
    assert "- verifier top-1: no difference found between noisy and defaults (" in lines[4]


@pytest.mark.parametrize(("top1", "word"), [([0.5, 0.52, 0.48], "above"), ([0.1, 0.2, 0.0], "not")])
def test_main_claims_compare_with_chance(top1, word):
    line = table.main_claims([_cell("defaults", top1, [0.9] * 3)])[1]
    assert line.startswith("- `digits:cnn`: the default samples are ")
    assert ("recognised above chance by the verifiers" in line) == (word == "above")


def test_a_row_has_a_mean_and_interval_per_column():
    row = _cell("x", [0.5, 0.55, 0.45], [0.9, 0.92, 0.91])
    row.runs = [{**r, "is_digits-resnet": 2.0, "adversarial_rate": 0.4} for r in row.runs]
    cells_of_row = row.row().strip("|").split("|")
    assert len(cells_of_row) == table.HEADER.split("\n")[0].count("|") - 1
    assert cells_of_row[3].strip() == "0.500 ± 0.124"
