"""Architectures of the embedded digits zoo (32 x 32 inputs by default).

Four deliberately different families, so that one can be a target and the others
independent verifiers: a plain CNN with batch norm, a residual network (also in a deep
variant, three residual blocks per stage), a tiny ViT and a tiny ResMLP. The ViT and
ResMLP have no batch norm (DeepInversion does not apply).
Every network names its parts ``stem``, ``stage1``..``stage3`` (or ``blocks.i``) and
``head`` so that feature taps read the same across the zoo.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class DigitsCNN(nn.Module):
    """A small VGG-style CNN with batch norm."""

    feature_layers = ("stem", "stage1", "stage2", "stage3")

    def __init__(self, in_chans: int = 1, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(in_chans, width)
        self.stage1 = nn.Sequential(_conv_bn_relu(width, width), nn.MaxPool2d(2))
        self.stage2 = nn.Sequential(
            _conv_bn_relu(width, 2 * width), _conv_bn_relu(2 * width, 2 * width), nn.MaxPool2d(2)
        )
        self.stage3 = _conv_bn_relu(2 * width, 4 * width)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.head(self.pool(x))


class BasicBlock(nn.Module):
    """A residual block of two 3x3 convolutions with batch norm."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def _stage(c_in: int, c_out: int, stride: int, blocks: int) -> nn.Module:
    """One residual block, or ``blocks`` of them in a Sequential (named ``0``, ``1``, ...)."""
    first = BasicBlock(c_in, c_out, stride)
    if blocks == 1:
        return first
    return nn.Sequential(first, *(BasicBlock(c_out, c_out) for _ in range(blocks - 1)))


class DigitsResNet(nn.Module):
    """A small ResNet: a stem and three stages of residual blocks (one each by default)."""

    feature_layers = ("stem", "stage1", "stage2", "stage3")

    def __init__(
        self, in_chans: int = 1, num_classes: int = 10, width: int = 24, blocks: int = 1
    ) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(in_chans, width)
        self.stage1 = _stage(width, width, 1, blocks)
        self.stage2 = _stage(width, 2 * width, 2, blocks)
        self.stage3 = _stage(2 * width, 4 * width, 2, blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.head(self.pool(x))


class DigitsDeepResNet(DigitsResNet):
    """The ResNet with three residual blocks per stage: 19 convolutions before the head.

    The deep target of the layer-wise inversion benchmark (cut after every block, like
    the paper's 20+ layers), so that inverters have as many blocks to chain as on
    ImageNet ResNets.
    """

    def __init__(self, in_chans: int = 1, num_classes: int = 10, width: int = 24) -> None:
        super().__init__(in_chans, num_classes, width, blocks=3)


class PatchEmbed(nn.Module):
    """Split the image into non-overlapping patches and project each to ``dim``."""

    def __init__(self, in_chans: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.proj(x).flatten(2).transpose(1, 2)


class TransformerBlock(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class DigitsViT(nn.Module):
    """A tiny Vision Transformer with a class token (fixed input size)."""

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 10,
        image_size: int = 32,
        patch_size: int = 4,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
    ) -> None:
        super().__init__()
        tokens = (image_size // patch_size) ** 2
        self.stem = PatchEmbed(in_chans, dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.feature_layers = ("stem",) + tuple(f"blocks.{i}" for i in range(depth))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        x = self.stem(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


class Affine(nn.Module):
    """Per-channel scale and shift (ResMLP's replacement for normalisation)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return x * self.alpha + self.beta


class ResMLPBlock(nn.Module):
    """ResMLP block: a linear token-mixing layer, then a per-token MLP."""

    def __init__(self, dim: int, tokens: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = Affine(dim)
        self.token_mix = nn.Linear(tokens, tokens)
        self.norm2 = Affine(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        x = x + self.token_mix(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.mlp(self.norm2(x))


class DigitsResMLP(nn.Module):
    """A tiny ResMLP (MLP-Mixer family, no attention, no batch norm; fixed input size)."""

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 10,
        image_size: int = 32,
        patch_size: int = 4,
        dim: int = 96,
        depth: int = 4,
    ) -> None:
        super().__init__()
        tokens = (image_size // patch_size) ** 2
        self.stem = PatchEmbed(in_chans, dim, patch_size)
        self.blocks = nn.Sequential(*[ResMLPBlock(dim, tokens) for _ in range(depth)])
        self.norm = Affine(dim)
        self.head = nn.Linear(dim, num_classes)
        self.feature_layers = ("stem",) + tuple(f"blocks.{i}" for i in range(depth))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        x = self.norm(self.blocks(self.stem(x)))
        return self.head(x.mean(dim=1))


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "cnn": DigitsCNN,
    "resnet": DigitsResNet,
    "resnet-deep": DigitsDeepResNet,
    "vit": DigitsViT,
    "mlp": DigitsResMLP,
}
FIXED_SIZE = {"vit", "mlp"}


def build_digits_net(arch: str, in_chans: int, num_classes: int, image_size: int) -> nn.Module:
    """Build an untrained digits architecture (a key of :data:`ARCHITECTURES`)."""
    cls = ARCHITECTURES[arch]
    if arch in FIXED_SIZE:
        return cls(in_chans=in_chans, num_classes=num_classes, image_size=image_size)
    return cls(in_chans=in_chans, num_classes=num_classes)
