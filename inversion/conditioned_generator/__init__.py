"""Network inversion with a conditioned generator (hidden label encodings, dropout, cosine).

``generator.py`` holds the generator G(z, c) and its encodings, ``losses.py`` the
objective, ``samples.py`` sampling, adversarial samples and loading from checkpoints,
``diversity.py`` the within-class diversity metric, ``draws.py`` the seeded latent /
label / noise draws, ``recipe.py`` the options and their defaults
(:class:`GeneratorRecipe`), and ``train.py`` the plain-PyTorch loop
:func:`train_generator` and its step :func:`generator_step`.

Wiring: ``model_inversion/lightning_modules/conditioned_generator.py``
(``ConditionedGeneratorInversion``) and
``model_inversion/datamodules/conditioned_generator.py`` (``LatentsDataModule``); configs
``configs/*/conditioned_generator*.yaml``; table ``benchmarks/conditioned_generator_table.py``
(``python -m benchmarks.conditioned_generator_table``).
"""

from inversion.conditioned_generator.diversity import (
    ClassDiversity,
)
from inversion.conditioned_generator.draws import (
    SPLIT_SEEDS,
    draw_batch,
    fixed_draws,
    train_batch,
)
from inversion.conditioned_generator.generator import (
    CONDITIONINGS,
    Condition,
    ConditionedGenerator,
    Conditioning,
    balanced_labels,
    check_labels,
    draw_latents,
    hot_matrix,
    soft_vector,
)
from inversion.conditioned_generator.losses import (
    COSINE_PAIRS,
    CosinePairs,
    GeneratorLoss,
    feature_orthogonality,
    kl_to_condition,
    mean_pairwise_cosine,
)
from inversion.conditioned_generator.recipe import GeneratorRecipe
from inversion.conditioned_generator.samples import (
    ADVERSARIAL_RULES,
    GENERATOR_KEY,
    adversarial_samples,
    generator_from_checkpoint,
    predict,
    sample_classes,
    write_class_folders,
)
from inversion.conditioned_generator.train import generator_step, train_generator

__all__ = [
    "ADVERSARIAL_RULES",
    "CONDITIONINGS",
    "COSINE_PAIRS",
    "ClassDiversity",
    "Condition",
    "Conditioning",
    "ConditionedGenerator",
    "CosinePairs",
    "GENERATOR_KEY",
    "GeneratorLoss",
    "GeneratorRecipe",
    "SPLIT_SEEDS",
    "adversarial_samples",
    "balanced_labels",
    "check_labels",
    "draw_batch",
    "draw_latents",
    "feature_orthogonality",
    "fixed_draws",
    "generator_from_checkpoint",
    "generator_step",
    "hot_matrix",
    "kl_to_condition",
    "mean_pairwise_cosine",
    "predict",
    "sample_classes",
    "soft_vector",
    "train_batch",
    "train_generator",
    "write_class_folders",
]
