"""A randomly initialised InceptionV3 weights file for torch-fidelity (no download).

For the throughput benchmark and the tests, which must not download the real weights.

The batch-norm statistics are set from one batch of random images so that features
vary across images (with the default statistics, activations collapse).
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch


def make_random_inception_weights(path: Path, seed: int = 0) -> Path:
    """Write random InceptionV3 weights for torch-fidelity to ``path``; returns it."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    cls = fe.FeatureExtractorInceptionV3
    with (
        mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}),
        mock.patch.object(cls, "load_state_dict", lambda self, state: None),
    ):
        torch.manual_seed(seed)
        net = cls("inception-v3-compat", ["2048", "logits_unbiased"])
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running stats = this batch's stats
    net.train()
    with torch.no_grad():
        net((torch.rand(8, 3, 64, 64) * 255).to(torch.uint8))
    torch.save(net.state_dict(), path)
    return path
