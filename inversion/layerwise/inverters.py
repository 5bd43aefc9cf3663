"""Inverse blocks g_k (one per classifier block) and their composition into one inverter.

For a classifier cut into blocks f_1, ..., f_K (:mod:`inversion.models.split`), g_k maps
the output of f_k back to its input; :class:`InverterStack` composes g_1 o ... o g_K into
one feed-forward inverter from the representation after layer K to an image in [0, 1].
The default g_k mirrors a convolutional block: a 1x1 projection, resizing to the
input's spatial size, 3x3 convolutions with normalisation, and a linear (for
activations) or sigmoid (for the image) output. Vectors (``penultimate``) and token
sequences (ViT/MLP stages) get their own mirrors (a linear un-pooling, a per-token MLP,
an un-patchify). :class:`BlockOptions` configures them.

:func:`export_inverter` writes the composed inverter with ``torch.export``: a file you
made yourself loads with ``torch.export.load(path).module()`` in a plain PyTorch program,
without this project. :func:`load_exported_inverter` loads any such file safely: it
reads only JSON and raw weights (never the pickled parts, never the program's graph).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inversion.errors import InversionError
from inversion.options import with_fields

Shape = tuple[int, ...]
BlockNorm = Literal["batch", "group", "instance", "none"]
NORMS: tuple[str, ...] = get_args(BlockNorm)
UPSAMPLING = ("nearest", "bilinear")


@dataclasses.dataclass(frozen=True)
class BlockOptions:
    """The architecture of every inverse block (all fields can be set in YAML).

    Attributes:
        norm: Normalisation after each hidden convolution: ``batch``, ``group``
            (GroupNorm, 8 groups), ``instance`` or ``none``.
        width: Hidden channels as a multiple of the larger of the block's input and
            output channel counts (clipped to [min_width, max_width]).
        min_width: Smallest number of hidden channels.
        max_width: Largest number of hidden channels (keeps ImageNet blocks small).
        convs: 3x3 convolutions (with normalisation and ReLU) before the resize.
        upsample: ``nearest`` or ``bilinear`` resizing to the output's spatial size.
    """

    norm: str = "batch"
    width: float = 1.0
    min_width: int = 16
    max_width: int = 256
    convs: int = 1
    upsample: str = "nearest"

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise InversionError(f"Unknown norm {self.norm!r}; choose one of {NORMS}.")
        if self.upsample not in UPSAMPLING:
            raise InversionError(f"Unknown upsample {self.upsample!r}; choose one of {UPSAMPLING}.")
        if self.width <= 0 or self.min_width < 1 or self.max_width < self.min_width:
            raise InversionError(
                "width must be positive and 1 <= min_width <= max_width; got "
                f"width={self.width}, min_width={self.min_width}, max_width={self.max_width}."
            )
        if self.convs < 1:
            raise InversionError(f"convs must be at least 1, got {self.convs}.")

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None) -> BlockOptions:
        """Build from a YAML dict; an unknown key lists the valid ones."""
        return with_fields(cls(), options, "inverse-block options")

    def hidden(self, *channels: int) -> int:
        """Hidden channels for a block between ``channels``."""
        wanted = round(self.width * max(channels))
        return int(min(max(wanted, self.min_width), self.max_width))


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def _conv_norm_relu(c_in: int, c_out: int, norm: str, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=norm == "none"),
        _norm(norm, c_out),
        nn.ReLU(inplace=True),
    )


class ConvInverse(nn.Module):
    """Map C x H x W to C' x H' x W', mirroring a convolutional block.

    A 1x1 projection and 3x3 convolutions at the input's resolution, a resize to the
    output's, and a 3x3 output convolution.
    """

    def __init__(self, in_shape: Shape, out_shape: Shape, options: BlockOptions) -> None:
        super().__init__()
        hidden = options.hidden(in_shape[0], out_shape[0])
        self.size = (int(out_shape[1]), int(out_shape[2]))
        self.mode = options.upsample
        self.project = _conv_norm_relu(in_shape[0], hidden, options.norm, kernel=1)
        self.convs = nn.Sequential(
            *[_conv_norm_relu(hidden, hidden, options.norm) for _ in range(options.convs)]
        )
        self.out = nn.Conv2d(hidden, out_shape[0], 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:  # noqa: D102
        h = self.convs(self.project(z))
        if tuple(h.shape[-2:]) != self.size:
            h = F.interpolate(h, size=self.size, mode=self.mode)
        return self.out(h)


class VectorToMap(nn.Module):
    """Map a vector (e.g. ``penultimate``) to C x H x W: linear un-pooling, then convs."""

    def __init__(self, in_shape: Shape, out_shape: Shape, options: BlockOptions) -> None:
        super().__init__()
        hidden = options.hidden(out_shape[0])
        self.map_shape = (hidden, int(out_shape[1]), int(out_shape[2]))
        self.unpool = nn.Linear(in_shape[0], hidden * out_shape[1] * out_shape[2])
        self.norm = nn.Sequential(_norm(options.norm, hidden), nn.ReLU(inplace=True))
        self.convs = nn.Sequential(
            *[_conv_norm_relu(hidden, hidden, options.norm) for _ in range(options.convs)]
        )
        self.out = nn.Conv2d(hidden, out_shape[0], 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:  # noqa: D102
        h = self.unpool(z.flatten(1)).view(-1, *self.map_shape)
        return self.out(self.convs(self.norm(h)))


class TokenMLP(nn.Module):
    """Map T x D tokens to T' x D': drop or add leading tokens, then a per-token MLP.

    Leading tokens are the class tokens of ViTs (added by the forward pass, so dropped
    by its inverse); missing ones are learnt.
    """

    def __init__(self, in_shape: Shape, out_shape: Shape, options: BlockOptions) -> None:
        super().__init__()
        tokens_in, dim_in = in_shape
        tokens_out, dim_out = out_shape
        hidden = options.hidden(dim_in, dim_out)
        self.drop = max(tokens_in - tokens_out, 0)
        self.extra = nn.Parameter(torch.zeros(1, max(tokens_out - tokens_in, 0), dim_out))
        self.mlp = nn.Sequential(
            nn.LayerNorm(dim_in), nn.Linear(dim_in, hidden), nn.GELU(), nn.Linear(hidden, dim_out)
        )

    def forward(self, z: Tensor) -> Tensor:  # noqa: D102
        h = self.mlp(z[:, self.drop :])
        if self.extra.shape[1]:
            h = torch.cat([self.extra.expand(h.shape[0], -1, -1), h], dim=1)
        return h


class VectorToTokens(nn.Module):
    """Map a vector to T' x D' tokens: a linear expansion, then a per-token MLP."""

    def __init__(self, in_shape: Shape, out_shape: Shape, options: BlockOptions) -> None:
        super().__init__()
        tokens, dim = out_shape
        hidden = options.hidden(dim)
        self.tokens, self.hidden = tokens, hidden
        self.expand = nn.Linear(in_shape[0], tokens * hidden)
        self.mlp = TokenMLP((tokens, hidden), out_shape, options)

    def forward(self, z: Tensor) -> Tensor:  # noqa: D102
        return self.mlp(self.expand(z.flatten(1)).view(-1, self.tokens, self.hidden))


class TokensToMap(nn.Module):
    """Map T x D patch tokens to C x H x W.

    Drop the leading (class) token, lay the patches on their grid (un-patchify), then a
    :class:`ConvInverse`.
    """

    def __init__(self, in_shape: Shape, out_shape: Shape, options: BlockOptions) -> None:
        super().__init__()
        tokens, dim = in_shape
        grid = math.isqrt(tokens)
        leading = tokens - grid * grid  # at most one leading (class) token
        if leading > 1 or out_shape[1] % grid or out_shape[2] % grid:
            raise InversionError(
                f"No default inverse block from {tokens} tokens to a {out_shape} map: the "
                "tokens must be a square grid of patches (plus at most one class token)."
            )
        self.grid, self.drop = grid, leading
        self.conv = ConvInverse((dim, grid, grid), out_shape, options)

    def forward(self, z: Tensor) -> Tensor:  # noqa: D102
        h = z[:, self.drop :].transpose(1, 2)
        return self.conv(h.reshape(h.shape[0], h.shape[1], self.grid, self.grid))


def inverse_block(
    in_shape: Shape, out_shape: Shape, options: BlockOptions, image: bool = False
) -> nn.Module:
    """The default inverse of a block that maps ``out_shape`` to ``in_shape``.

    Args:
        in_shape: Per-sample shape of the block's output (the inverse's input).
        out_shape: Per-sample shape of the block's input (the inverse's output).
        options: The architecture options.
        image: Whether ``out_shape`` is the image (a sigmoid keeps it in [0, 1]).
    """
    kinds = {
        (3, 3): ConvInverse,
        (1, 3): VectorToMap,
        (2, 2): TokenMLP,
        (1, 2): VectorToTokens,
        (2, 3): TokensToMap,
    }
    kind = kinds.get((len(in_shape), len(out_shape)))
    if kind is None:
        raise InversionError(
            f"No default inverse block from activations of shape {in_shape} to {out_shape}; "
            "cut the classifier at layers whose outputs are maps, tokens or vectors."
        )
    block = kind(tuple(in_shape), tuple(out_shape), options)
    return nn.Sequential(block, nn.Sigmoid()) if image else block


class InverterStack(nn.Module):
    """g_1, ..., g_K composed: from the output of layer ``depth`` back to the image.

    ``blocks[k - 1]`` is g_k, the inverse of classifier block f_k.

    Args:
        shapes: Per-sample shapes ``[image, layer 1, ..., layer K]`` (see
            ``ClassifierBlocks.shapes``).
        options: The inverse-block architecture.
    """

    def __init__(self, shapes: Sequence[Shape], options: BlockOptions | None = None) -> None:
        super().__init__()
        options = options or BlockOptions()
        self.options = options
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        self.blocks = nn.ModuleList(
            inverse_block(self.shapes[k], self.shapes[k - 1], options, image=k == 1)
            for k in range(1, len(self.shapes))
        )

    def __len__(self) -> int:
        return len(self.blocks)

    def chain(self, z: Tensor, depth: int | None = None) -> list[Tensor]:
        """``[x_hat, h_hat_1, ..., h_hat_depth = z]``: every block's inverted input.

        Indexed like ``ClassifierBlocks.prefix``: entry k estimates the output of layer k.
        """
        depth = len(self.blocks) if depth is None else depth
        chain = [z]
        for k in range(depth, 0, -1):
            chain.append(self.blocks[k - 1](chain[-1]))
        return chain[::-1]

    def forward(self, z: Tensor, depth: int | None = None) -> Tensor:
        """The image (in [0, 1]) that the output ``z`` of layer ``depth`` inverts to."""
        depth = len(self.blocks) if depth is None else depth
        for k in range(depth, 0, -1):
            z = self.blocks[k - 1](z)
        return z


class ComposedInverter(nn.Module):
    """g_1 o ... o g_depth as a plain one-input module (what :func:`export_inverter` writes)."""

    def __init__(self, stack: InverterStack, depth: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(stack.blocks[k - 1] for k in range(depth, 0, -1))

    def forward(self, z: Tensor) -> Tensor:  # noqa: D102
        for block in self.blocks:
            z = block(z)
        return z


META_FILE = "inverter.json"

#: serde ``ScalarType`` names (``torch/_export/serde/schema.py``) of the dtypes an
#: inverter's weights may have.
_DTYPES = {5: torch.int64, 6: torch.float16, 7: torch.float32, 8: torch.float64, 13: torch.bfloat16}


def export_inverter(
    stack: InverterStack, depth: int, path: str | Path, metadata: dict[str, Any] | None = None
) -> Path:
    """Write g_1 o ... o g_depth with ``torch.export`` (any batch size), eval mode, on CPU.

    Load it back safely with :func:`load_exported_inverter`. A file you made yourself
    also loads in a plain PyTorch program (``torch.export.load`` unpickles, so never
    use it on a file from elsewhere)::

        extra = {"inverter.json": ""}
        inverter = torch.export.load(path, extra_files=extra).module()
        images = inverter(features)    # features: N x <shape of layer depth>

    Args:
        stack: The trained inverter.
        depth: Invert from the output of layer ``depth`` (1..K).
        path: Output file (``.pt2``).
        metadata: JSON-serialisable facts stored beside the program (``inverter.json``):
            the classifier, the layer, the shapes.

    Returns:
        The written path.
    """
    if not 1 <= depth <= len(stack):
        raise InversionError(f"depth must be in 1..{len(stack)}, got {depth}.")
    module = copy.deepcopy(ComposedInverter(stack, depth)).float().cpu().eval()
    example = torch.zeros(2, *stack.shapes[depth])
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    meta = {
        "input_shape": list(stack.shapes[depth]),
        "output_shape": list(stack.shapes[0]),
        **(metadata or {}),
        # What load_exported_inverter rebuilds the module from (it never reads the graph).
        "architecture": {
            "shapes": [list(shape) for shape in stack.shapes[: depth + 1]],
            "options": dataclasses.asdict(stack.options),
        },
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, path, extra_files={META_FILE: json.dumps(meta)})
    return path


def load_exported_inverter(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load what :func:`export_inverter` wrote, safely: ``(module, metadata)``.

    ``torch.export.load`` unpickles parts of the archive (falling back to
    ``weights_only=False``) and rebuilds the program's graph from JSON that names
    arbitrary ``torch`` functions, so a tampered file could run code. This loader uses
    neither: it rebuilds the inverter from the architecture recorded in
    ``inverter.json`` and fills it with the weights read as raw bytes (described by the
    archive's JSON weights config; pickled tensors only through ``weights_only=True``).
    Pickled parts it does not need must still load with ``weights_only=True``; anything
    else in the archive is refused.
    """
    import zipfile

    def refuse(why: str) -> InversionError:
        return InversionError(
            f"Cannot load the exported inverter {path}: {why}. Re-export it with "
            "export_inverter (python train.py ... with export_path) from a trusted run."
        )

    try:
        with zipfile.ZipFile(path) as archive:
            files = {name: archive.read(name) for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile, RuntimeError) as err:
        raise refuse(f"not a readable .pt2 archive ({err})") from err
    meta_names = [n for n in files if n.endswith(f"/extra/{META_FILE}")]
    if len(meta_names) != 1:
        raise refuse(f"no extra/{META_FILE}; it was not written by export_inverter")
    root = meta_names[0][: -len(f"extra/{META_FILE}")]
    try:
        meta = json.loads(files[meta_names[0]])
        shapes = [tuple(int(d) for d in s) for s in meta["architecture"]["shapes"]]
        options = BlockOptions(**meta["architecture"]["options"])
        stack = InverterStack(shapes, options)
        module = ComposedInverter(stack, len(shapes) - 1)
    except (ValueError, KeyError, TypeError) as err:
        raise refuse(f"its {META_FILE} does not describe the architecture ({err!r})") from err
    module = module.float().eval()
    expected = module.state_dict()
    state = _read_exported_weights(files, root, expected, refuse)
    module.load_state_dict(state, strict=True)
    return module, meta


def _read_exported_weights(
    files: dict[str, bytes],
    root: str,
    expected: dict[str, Tensor],
    refuse: Any,
) -> dict[str, Tensor]:
    """The state dict of a .pt2 archive, from raw bytes and ``weights_only`` pickles only."""
    import io

    known = re.compile(
        r"(archive_format|archive_version|byteorder|version|\.data/version|"
        r"\.data/serialization_id|models/model\.json|extra/[^/]+|"
        r"data/(weights|constants)/[A-Za-z0-9_]+(\.json|\.pt)?|data/sample_inputs/model\.pt)"
    )
    pickled: list[str] = []
    for name, data in files.items():
        relative = name[len(root) :] if name.startswith(root) else name
        if not name.startswith(root) or not known.fullmatch(relative):
            raise refuse(f"unexpected member {name!r}")
        if data[:2] == b"PK" or relative.endswith(".pt") or data[:1] == b"\x80":
            pickled.append(name)
    try:
        config = json.loads(files[f"{root}data/weights/model_weights_config.json"])["config"]
        constants = json.loads(
            files.get(f"{root}data/constants/model_constants_config.json", b'{"config": {}}')
        )
    except (KeyError, ValueError, TypeError) as err:
        raise refuse(f"no readable weights config ({err!r})") from err
    if constants.get("config"):
        raise refuse("it holds constants or objects that an inverter does not have")
    if set(config) != set(expected):
        raise refuse("its weights do not match the architecture in its metadata")
    state: dict[str, Tensor] = {}
    read: set[str] = set()
    for key, entry in config.items():
        member = f"{root}data/weights/{entry.get('path_name')}"
        if member not in files:
            raise refuse(f"weight {key!r} has no data")
        read.add(member)
        try:
            if entry.get("use_pickle"):
                tensor = torch.load(io.BytesIO(files[member]), weights_only=True)
                if not isinstance(tensor, Tensor):
                    raise TypeError(type(tensor).__name__)
            else:
                meta = entry["tensor_meta"]
                dtype = _DTYPES[int(meta["dtype"])]
                sizes = [int(s["as_int"]) for s in meta["sizes"]]
                strides = [int(s["as_int"]) for s in meta["strides"]]
                offset = int(meta["storage_offset"]["as_int"])
                flat = torch.frombuffer(bytearray(files[member]), dtype=dtype)
                needed = (
                    offset + sum((n - 1) * st for n, st in zip(sizes, strides, strict=True)) + 1
                )
                if min(sizes, default=1) > 0 and (offset < 0 or needed > flat.numel()):
                    raise ValueError("the data is shorter than its shape")
                tensor = torch.as_strided(flat, sizes, strides, offset).clone()
        except Exception as err:  # any failure to read a weight is a bad file
            raise refuse(f"weight {key!r} is unreadable ({err!r})") from err
        if tensor.shape != expected[key].shape or tensor.dtype != expected[key].dtype:
            raise refuse(f"weight {key!r} has shape {tuple(tensor.shape)}, {tensor.dtype}")
        state[key] = tensor
    for name in pickled:
        if name in read or name.endswith(".json"):
            continue
        try:
            torch.load(io.BytesIO(files[name]), weights_only=True)
        except Exception as err:  # the weights-only unpickler refuses anything else
            raise refuse(f"{name} holds pickled objects other than tensors ({err})") from err
    return state
