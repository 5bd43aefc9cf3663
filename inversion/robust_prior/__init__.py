"""Robustness as a prior: the representation tools of a (robust) classifier.

``tools.py`` holds representation inversion, feature visualisation, manipulation and
interpolation (L2 PGD in input space, ``inversion/attacks.py``) and ``defaults.py`` their
default step sizes; ``evaluation.py`` clean and robust accuracy over a list of eps (PGD, or
the standard AutoAttack as an optional extra). Adversarial training itself is
``inversion.attacks.PGD`` inside the classification recipe of ``inversion/training.py``.

Wiring: ``model_inversion/lightning_modules/robust_prior_training.py``
(``RobustClassifierModule``) and ``model_inversion/lightning_modules/robust_prior_tools.py``
(``RepresentationTools``); configs
``configs/*/robust_prior_*.yaml``; table ``benchmarks/robust_prior_table.py``.
"""

from inversion.robust_prior.defaults import (
    DEFAULT_ALPHAS,
    SEED_IMAGES,
    STEP_FACTOR,
    TOOL_DEFAULTS,
    TOOLS,
    SeedImage,
    Tool,
    default_step_size,
    eps_name,
)
from inversion.robust_prior.evaluation import (
    AUTOATTACK_INSTALL,
    EVAL_ATTACKS,
    EVAL_STEPS,
    EvalAttack,
    accuracy_over_eps,
    adversarial_images,
    autoattack_images,
    correct_predictions,
    eval_pgd,
    require_autoattack,
    robust_acc_key,
    robust_correct,
)
from inversion.robust_prior.tools import (
    HUGE_EPS,
    apply_tool,
    chosen_features,
    fake_last_relu,
    gray_seeds,
    interpolate_representations,
    invert_representation,
    manipulate_features,
    representation,
    representation_distance,
    tool_attack,
    top_features,
    visualize_features,
)

__all__ = [
    "AUTOATTACK_INSTALL",
    "EVAL_ATTACKS",
    "EVAL_STEPS",
    "EvalAttack",
    "accuracy_over_eps",
    "adversarial_images",
    "autoattack_images",
    "correct_predictions",
    "eval_pgd",
    "require_autoattack",
    "robust_acc_key",
    "robust_correct",
    "DEFAULT_ALPHAS",
    "SEED_IMAGES",
    "STEP_FACTOR",
    "SeedImage",
    "TOOLS",
    "TOOL_DEFAULTS",
    "Tool",
    "apply_tool",
    "chosen_features",
    "default_step_size",
    "eps_name",
    "HUGE_EPS",
    "fake_last_relu",
    "gray_seeds",
    "interpolate_representations",
    "invert_representation",
    "manipulate_features",
    "representation",
    "representation_distance",
    "tool_attack",
    "top_features",
    "visualize_features",
]
