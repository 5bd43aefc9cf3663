"""Network inversion with a conditioned generator (hidden label encodings, dropout, cosine).

``generator.py`` holds the generator G(z, c) and its encodings, ``losses.py`` the
objective, ``samples.py`` sampling, adversarial samples and loading from checkpoints,
``diversity.py`` the within-class diversity metric, and ``train.py`` the plain-PyTorch
loop :func:`train_generator`.

Wiring: ``lightning_modules/conditioned_generator.py`` (``ConditionedGeneratorInversion``)
and ``datamodules/conditioned_generator.py`` (``LatentsDataModule``); configs
``configs/*/conditioned_generator*.yaml``; table
``benchmarks/conditioned_generator_table.py``.
"""


from inversion.conditioned_generator.diversity import (
    ClassDiversity,
)
from inversion.conditioned_generator.generator import (
    CONDITIONINGS,
    Condition,
    ConditionedGenerator,
    balanced_labels,
    check_labels,
    draw_latents,
    hot_matrix,
    soft_vector,
)
from inversion.conditioned_generator.losses import (
    COSINE_PAIRS,
    GeneratorLoss,
    feature_orthogonality,
    kl_to_condition,
    mean_pairwise_cosine,
)
from inversion.conditioned_generator.samples import (
    ADVERSARIAL_RULES,
    GENERATOR_KEY,
    adversarial_samples,
    generator_from_checkpoint,
    predict,
    sample_classes,
    write_class_folders,
)

__all__ = [
    "ADVERSARIAL_RULES",
    "CONDITIONINGS",
    "COSINE_PAIRS",
    "ClassDiversity",
    "Condition",
    "ConditionedGenerator",
    "GENERATOR_KEY",
    "GeneratorLoss",
    "adversarial_samples",
    "balanced_labels",
    "check_labels",
    "draw_latents",
    "feature_orthogonality",
    "generator_from_checkpoint",
    "hot_matrix",
    "kl_to_condition",
    "mean_pairwise_cosine",
    "predict",
    "sample_classes",
    "soft_vector",
    "write_class_folders",
]
