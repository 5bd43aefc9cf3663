"""The GAN-inversion table's plumbing: encoders cached per recipe and seed, claims, figures.

A tiny random generator stands in for digits:dcgan and the cache is a temporary folder,
so nothing here trains the real table.
"""

import pytest
import torch

from benchmarks import gan_inversion_table as table
from benchmarks.intervals import SEEDS
from inversion.gan_inversion import DCGANGenerator

TINY = table.EncoderRecipe(steps=2, batch=8, width=4)


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """A small random generator and an empty cache; returns the number of encoders trained."""
    monkeypatch.setenv("INVERSION_CACHE", str(tmp_path))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        generator = DCGANGenerator(latent_dim=8, width=4).eval().requires_grad_(False)
    monkeypatch.setattr(table, "generator", lambda: generator)
    trained = []
    train = table.train

    def counted(recipe, seed):
        trained.append((recipe, seed))
        return train(recipe, seed)

    monkeypatch.setattr(table, "train", counted)
    return trained


def weights(recipe, seed):
    encoder, _ = table.trained_encoder(recipe, seed)
    return torch.cat([p.flatten() for p in encoder.state_dict().values()])


def test_an_encoder_is_trained_once_per_recipe_and_seed(tiny):
    first = weights(TINY, 0)
    assert torch.equal(weights(TINY, 0), first)  # read back from the cache
    assert len(tiny) == 1
    assert not torch.equal(weights(TINY, 1), first)  # the seed is the encoder's randomness
    other = table.EncoderRecipe(steps=2, batch=8, width=4, cycle=0.0)
    assert not torch.equal(weights(other, 0), first)
    assert len(tiny) == 3


def test_cells_are_keyed_by_the_generator_they_trained_against(tiny):
    fields = table.cell_fields(TINY, 0)
    assert fields["seed"] == 0 and fields["steps"] == 2
    assert fields["generator_weights"] == table.weights_digest(table.generator())
    changed = DCGANGenerator(latent_dim=8, width=4)
    assert table.weights_digest(changed) != fields["generator_weights"]


def test_a_cell_reports_every_metric_of_the_table(tiny):
    metrics = table.run(TINY, 0)
    assert {name for name, *_ in table.METRICS} | {"seconds"} == set(metrics)
    assert -1.0 <= metrics["latent_cosine"] <= 1.0


def test_training_runs_on_one_thread_and_restores_the_count():
    before = torch.get_num_threads()
    with table.one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_the_held_out_codes_and_damage_are_drawn_from_seeds_no_encoder_trains_with():
    assert not {table.HELD_OUT_SEED, table.DAMAGE_SEED} & set(SEEDS)


def fake_cells(shift: float, noise: list[float]) -> list[table.Cell]:
    """Every row at the same values but 'cycle only', moved by ``shift`` plus ``noise``."""
    base = {name: 0.5 for name, *_ in table.METRICS}
    base.update(psnr_corrupted=15.0, psnr_repaired=16.0, seconds=1.0)
    return [
        table.Cell(
            label,
            [
                {k: v + (shift + n if label == "cycle only" else 0.0) for k, v in base.items()}
                for n in noise
            ],
        )
        for label in table.ROWS
    ]


def test_claims_follow_the_paired_intervals():
    clear = table.claims(fake_cells(1.0, [0.0, 0.01, -0.01]))
    assert any("cycle only beats latent + 100 × cycle" in line for line in clear)
    assert "- latent MSE: latent + 100 × cycle beats cycle only" in [
        line.split(" (")[0] for line in clear
    ]
    assert any("- latent only: re-generating repairs damaged images" in line for line in clear)
    noisy = table.claims(fake_cells(0.1, [0.0, 1.0, -1.0]))
    verdict = "no difference found between cycle only and latent + 100 × cycle"
    assert any(verdict in line for line in noisy)


def test_each_claim_reads_whole_before_its_interval():
    # the quality test compares the text before " (" with the page: it must hold the verdict
    for line in table.claims(fake_cells(1.0, [0.0, 0.01, -0.01])):
        statement = line.split(" (")[0]
        assert "beats" in statement or "no difference" in statement or "re-generating" in statement


def test_the_repair_grid_is_written_from_the_cached_default_encoder(tiny, monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    monkeypatch.setitem(table.ROWS, table.DEFAULT, TINY)
    table.trained_encoder(TINY, SEEDS[0])
    [path] = table.write_figures(tmp_path / "grid.png")
    assert path.stat().st_size > 0
    assert len(tiny) == 1  # the figure trained nothing more
