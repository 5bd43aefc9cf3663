"""Seed variants of the digits zoo (the training seeds of the robust-prior table)."""

import dataclasses

import torch

from inversion.models import zoo


def test_seed_variants_train_by_the_zoo_loop_and_cache_by_their_key(tmp_path, monkeypatch):
    monkeypatch.setenv("INVERSION_CACHE", str(tmp_path))
    monkeypatch.setitem(zoo.ZOO, "cnn", dataclasses.replace(zoo.ZOO["cnn"], epochs=1))
    assert zoo.zoo_variant("cnn", 0) == zoo.ZOO["cnn"]
    variants = [zoo.zoo_variant("cnn", seed) for seed in (1, 2)]
    zoo_seeds = {recipe.seed for recipe in zoo.ZOO.values()}
    assert all(v.seed not in zoo_seeds for v in variants)
    assert all(dataclasses.replace(v, seed=0) == dataclasses.replace(zoo.ZOO["cnn"], seed=0)
               for v in variants)  # fmt: skip
    models = [zoo.load_zoo_model("cnn", v) for v in variants]
    assert all(zoo.zoo_path("cnn", v).is_file() for v in variants)
    assert not zoo.zoo_path("cnn").exists()  # the zoo's own model is not trained
    weights = [next(m.net.parameters()) for m in models]
    assert not torch.equal(*weights)
    again = zoo.load_zoo_model("cnn", variants[0])  # read from its cache file
    assert torch.equal(next(again.net.parameters()), weights[0])


def test_first_use_inside_no_grad_still_trains(tmp_path, monkeypatch):
    """A table may build a zoo model for the first time inside ``torch.no_grad()``."""
    monkeypatch.setenv("INVERSION_CACHE", str(tmp_path))
    recipe = dataclasses.replace(zoo.ZOO["cnn"], epochs=1)
    with torch.no_grad():
        inside = zoo.train_zoo_model("cnn", progress=False, recipe=recipe)["state_dict"]
    outside = zoo.train_zoo_model("cnn", progress=False, recipe=recipe)["state_dict"]
    assert inside.keys() == outside.keys()
    assert all(torch.equal(inside[k], outside[k]) for k in inside)  # the same seeded loop
