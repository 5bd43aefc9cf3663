"""Dominant patterns: universal adversarial patterns by feature-space insensitivity.

``pattern.py`` holds the pattern (one L-inf-bounded perturbation), ``objectives.py`` the
objectives (dominant, and the label-free UAP baselines) and the plain-PyTorch search
:func:`find_pattern`, ``scores.py`` fooling rate, dominance and the transfer matrix, and
``downstream.py`` the new-head transfer tasks.

Wiring: ``model_inversion/lightning_modules/dominant_patterns.py`` (``DominantPatterns``) and
``model_inversion/datamodules/dominant_patterns.py`` (``ProxyDataModule``); configs
``configs/*/dominant_patterns*.yaml``; table ``benchmarks/dominant_patterns_table.py``.
"""

from inversion.dominant_patterns.objectives import (
    LOGITS,
    OBJECTIVES,
    Objective,
    PatternObjective,
    find_pattern,
    flat_features,
    pattern_optimizer,
    proxy_images,
)
from inversion.dominant_patterns.pattern import (
    DEFAULT_EPS,
    UniversalPattern,
    random_pattern,
)
from inversion.dominant_patterns.scores import (
    Dominance,
    FoolingRate,
    PatternScores,
    pattern_logits,
    score_pattern,
    transfer_matrix,
)

__all__ = [
    "DEFAULT_EPS",
    "Dominance",
    "FoolingRate",
    "LOGITS",
    "OBJECTIVES",
    "Objective",
    "PatternObjective",
    "PatternScores",
    "UniversalPattern",
    "find_pattern",
    "flat_features",
    "pattern_logits",
    "pattern_optimizer",
    "proxy_images",
    "random_pattern",
    "score_pattern",
    "transfer_matrix",
]
