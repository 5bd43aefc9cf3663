"""The options of a conditioned generator's training, with their defaults, in one place.

``ConditionedGeneratorInversion`` takes these fields as init args (its defaults are read
from here), the plain loop :func:`~inversion.conditioned_generator.train_generator` takes
a :class:`GeneratorRecipe`, and the digits table hashes the resolved recipe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from inversion.conditioned_generator.generator import ConditionedGenerator, Conditioning
from inversion.conditioned_generator.losses import CosinePairs, GeneratorLoss
from inversion.models import PENULTIMATE
from inversion.options import with_fields


@dataclasses.dataclass(frozen=True)
class GeneratorRecipe:
    """The generator, its loss and its optimiser (the paper's setting with hidden encodings).

    Attributes:
        image_size: Side of the generated images (s x 2^n with s in 4..7: 32, 224, ...).
        channels: Channels of the generated images.
        latent_dim: Size of the latent z.
        conditioning: ``onehot`` (baseline), ``vector`` (soft), ``matrix`` (hot matrix) or
            ``vector_matrix``.
        width: Channels of the generator's last stage (they double per stage inwards).
        max_width: Largest channel count of the generator.
        dropout: Dropout rate after every hidden layer of the generator.
        dropout_at_sampling: Keep dropout on when sampling (validation, test, predict).
        soft_scale: Inverse temperature of the soft conditioning vector.
        matrix_size: Side of the hot matrix (default K, or ceil(sqrt(K)) above 32 classes).
        kl_weight: Weight of KL(conditioning vector || softmax(logits)) (alpha).
        ce_weight: Weight of the cross-entropy with the label (beta).
        cosine_weight: Weight of the mean pairwise feature cosine (gamma).
        cosine_pairs: ``all`` pairs of a batch (the paper) or ``same_class`` pairs.
        orthogonality_weight: Weight of the feature Gram-to-identity penalty.
        tv_weight: Weight of the L2 total-variation prior.
        l2_weight: Weight of the image L2-norm prior.
        feature_layer: Classifier layer of the feature terms and of ``feature_cosine``.
        lr: Adam learning rate (linear warm-up, then cosine decay to 0 over the run).
        betas: Adam betas.
        weight_decay: Adam weight decay.
        warmup_steps: Steps of linear learning-rate warm-up.
    """

    image_size: int = 32
    channels: int = 1
    latent_dim: int = 64
    conditioning: Conditioning = "matrix"
    width: int = 16
    max_width: int = 512
    dropout: float = 0.5
    dropout_at_sampling: bool = True
    soft_scale: float = 6.0
    matrix_size: int | None = None
    kl_weight: float = 1.0
    ce_weight: float = 1.0
    cosine_weight: float = 5.0
    cosine_pairs: CosinePairs = "same_class"
    orthogonality_weight: float = 0.0
    tv_weight: float = 0.0
    l2_weight: float = 0.0
    feature_layer: str = PENULTIMATE
    lr: float = 5e-3
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None) -> GeneratorRecipe:
        """The defaults with some fields replaced; an unknown name lists the valid ones."""
        options = dict(options or {})
        if "betas" in options:  # YAML gives a list
            options["betas"] = tuple(float(b) for b in options["betas"])
        return with_fields(cls(), options, "generator options")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of the options."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def new_generator(self, num_classes: int, seed: int) -> ConditionedGenerator:
        """A fresh generator, initialised from ``seed`` (the caller's RNG is left alone)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return ConditionedGenerator(
                num_classes,
                image_size=self.image_size,
                channels=self.channels,
                latent_dim=self.latent_dim,
                conditioning=self.conditioning,
                width=self.width,
                max_width=self.max_width,
                dropout=self.dropout,
                dropout_at_sampling=self.dropout_at_sampling,
                soft_scale=self.soft_scale,
                matrix_size=self.matrix_size,
            )

    def loss(self) -> GeneratorLoss:
        """The objective."""
        return GeneratorLoss(
            kl=self.kl_weight,
            ce=self.ce_weight,
            cosine=self.cosine_weight,
            orthogonality=self.orthogonality_weight,
            tv_l2=self.tv_weight,
            l2=self.l2_weight,
            feature_layer=self.feature_layer,
            cosine_pairs=self.cosine_pairs,
        )

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Adam:
        """Adam with the recipe's rate, betas and weight decay."""
        betas = (self.betas[0], self.betas[1])  # a tuple even when given a list
        return torch.optim.Adam(parameters, lr=self.lr, betas=betas, weight_decay=self.weight_decay)
