"""Class inversion by input optimisation: Plug-In Inversion, DeepInversion, DeepDream.

A :class:`Recipe` (``recipe.py``) names the augmentations (``augment.py``), priors
(``inversion/priors.py``) and schedule; :class:`ClassInverter` (``inverter.py``) runs one
batch of targets from noise to images with plain PyTorch::

    model = build_classifier("digits:vit").freeze()
    inverter = ClassInverter(model, recipe_from("pii"), image_size=32, channels=1)
    images = inverter.invert(torch.tensor([0, 1, 2]))   # N x 1 x 32 x 32 in [0, 1]

Wiring: ``model_inversion/lightning_modules/class_inversion.py`` (``ClassInversion``, one
optimisation step per training step) and ``model_inversion/datamodules/class_inversion.py``
(``ClassTargetsDataModule``); configs ``configs/*/class_inversion_*.yaml``; table
``benchmarks/class_inversion_table.py``.
"""

from inversion.class_inversion.inverter import (
    ClassInverter,
)
from inversion.class_inversion.recipe import (
    INITS,
    RECIPES,
    Recipe,
    RecipeName,
    Stage,
    build_stages,
    recipe_from,
    stage_lr,
)

__all__ = [
    "ClassInverter",
    "INITS",
    "RECIPES",
    "RecipeName",
    "Recipe",
    "Stage",
    "build_stages",
    "recipe_from",
    "stage_lr",
]
