"""CIFAR-style ResNets: torchvision's ResNet with a 3x3 stride-1 stem and no max pooling.

This is the layout of the CIFAR ResNets in the robustness library (Engstrom et al.), so
its checkpoints (e.g. ``cifar_l2_0_5.pt``) load here as ``weights`` (their ``shortcut``
and ``linear`` modules are renamed to torchvision's ``downsample`` and ``fc``). Inputs are
32 x 32 RGB in [0, 1], normalised with the CIFAR-10 statistics.
"""

from __future__ import annotations

import re

from torch import Tensor, nn

from inversion.errors import InversionError

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def cifar_resnet(name: str, num_classes: int = 10) -> nn.Module:
    """A torchvision ResNet with the CIFAR stem (conv 3x3, stride 1; no max pool)."""
    import torchvision

    if name not in ARCHITECTURES:
        raise InversionError(
            f"Unknown cifar model {name!r}; choose one of "
            f"{', '.join('cifar:' + a for a in ARCHITECTURES)}."
        )
    net = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net


def from_robustness_names(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a robustness-library CIFAR ResNet state dict to torchvision's names."""
    renamed = {}
    for key, value in state.items():
        key = re.sub(r"\.shortcut\.", ".downsample.", key)
        key = re.sub(r"^linear\.", "fc.", key)
        renamed[key] = value
    return renamed
