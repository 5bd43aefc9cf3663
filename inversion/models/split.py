"""Split a classifier into blocks f_1, ..., f_K at named layers, each runnable on its own.

The network is traced once with ``torch.fx`` (torchvision's feature-extraction tracer,
or timm's for timm models, which knows timm's leaf modules), and the graph is cut at the
outputs of the named layers. Block k is a small ``GraphModule`` that takes the output of
layer k-1 (the image for k = 1) and computes only up to the output of layer k:

- the prefix f_1..k runs only the layers it needs (nothing after layer k is computed,
  which matters for ImageNet models inverted from early stages), and
- block k can be fed any tensor of its input's shape (the cycle-consistency term runs
  f_k on what an inverse block produced).

The first block applies the classifier's own input handling (channel adaptation,
resizing, normalisation), so the blocks take images in [0, 1] like the classifier does.
A cut is only valid where one tensor flows from one block to the next: a skip
connection across a cut is refused with a clear error (cut at stage boundaries).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, fx, nn

from inversion.errors import InversionError
from inversion.models.classifier import ImageClassifier
from inversion.models.taps import PENULTIMATE, resolve_module


def _feature_graph(net: nn.Module, names: Sequence[str]) -> fx.GraphModule:
    """Trace ``net`` (eval mode) into a graph that returns the outputs of ``names``."""
    nodes = {name: name for name in names}
    try:
        if type(net).__module__.startswith("timm."):
            from timm.models import create_feature_extractor as timm_feature_extractor

            module = timm_feature_extractor(net, nodes)
        else:
            from torchvision.models.feature_extraction import create_feature_extractor

            module = create_feature_extractor(net, return_nodes=nodes)
    except Exception as err:  # tracing failures come in many types
        raise InversionError(
            f"Cannot split {type(net).__name__} into blocks: torch.fx could not trace it "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). "
            "Layer-wise inversion needs a traceable network (timm, torchvision and the "
            "digits zoo are)."
        ) from err
    graph = getattr(module, "eval_graph", module.graph)  # DualGraphModule keeps both
    return fx.GraphModule(module, graph)


def _output_nodes(graph: fx.Graph) -> dict[str, fx.Node]:
    output = next(node for node in graph.nodes if node.op == "output")
    return dict(output.args[0])


def _segment(
    root: fx.GraphModule, start: fx.Node | None, end: fx.Node, flatten: bool, name: str
) -> fx.GraphModule:
    """The part of ``root``'s graph from ``start``'s output (or the input) to ``end``."""
    needed: set[fx.Node] = set()
    stack = [end]
    while stack:
        node = stack.pop()
        if node in needed:
            continue
        needed.add(node)
        if node is not start:
            stack.extend(n for n in node.all_input_nodes if n not in needed)
    if start is not None and any(n.op == "placeholder" for n in needed):
        raise InversionError(
            f"Cannot cut the network at {name!r}: another tensor besides its output "
            f"flows into the next block (a skip connection across the cut). Cut at stage "
            "boundaries instead."
        )
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    if start is not None:
        env[start] = graph.placeholder("h")
    for node in root.graph.nodes:
        if node in needed and node not in env:
            env[node] = graph.node_copy(node, lambda n: env[n])
    out = env[end]
    if flatten:
        out = graph.call_function(torch.flatten, (out, 1))
    graph.output(out)
    graph.lint()
    return fx.GraphModule(root, graph)


class _Prepare(nn.Module):
    """The classifier's input handling: images in [0, 1] to what its network takes."""

    def __init__(self, classifier: ImageClassifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: Tensor) -> Tensor:  # noqa: D102
        return self.classifier.prepare(images)


class ClassifierBlocks(nn.Module):
    """A frozen classifier cut into blocks f_1, ..., f_K at named layers.

    ``blocks[k - 1]`` is f_k: it maps the output of layer k-1 (images in [0, 1] for
    k = 1) to the output of layer k. ``shapes[k]`` is the per-sample shape of the output
    of layer k (``shapes[0]`` the image's). Always in eval mode, never trained.

    Args:
        classifier: The classifier (it is frozen).
        layers: Module names in forward order (see ``ImageClassifier.layer_names()``), or
            ``"penultimate"`` (the flattened input of the classification head, last).
        image_shape: Per-sample shape of the images, (C, H, W), used to probe shapes.
    """

    def __init__(
        self,
        classifier: ImageClassifier,
        layers: Sequence[str],
        image_shape: tuple[int, int, int],
    ) -> None:
        super().__init__()
        layers = list(layers)
        if not layers:
            raise InversionError("Name at least one layer to cut the classifier at.")
        if len(set(layers)) != len(layers):
            raise InversionError(f"A layer is named twice in {layers}.")
        if PENULTIMATE in layers[:-1]:
            raise InversionError(
                f"'{PENULTIMATE}' is the input of the classification head: it can only be "
                f"the last layer, got {layers}."
            )
        classifier.freeze()
        net = classifier.net
        named = [name for name in layers if name != PENULTIMATE]
        for name in named:
            resolve_module(net, name)  # an unknown name lists close ones
        traced = list(named)
        if PENULTIMATE in layers:
            if classifier.head is None:
                raise InversionError(
                    f"{classifier.name} has no known classification head, so "
                    f"'{PENULTIMATE}' cannot be a cut; name a layer instead."
                )
            traced.append(classifier.head)
        root = _feature_graph(net, traced)
        outputs = _output_nodes(root.graph)
        cuts = [outputs[name] for name in named]
        if PENULTIMATE in layers:
            assert classifier.head is not None  # checked above
            head = outputs[classifier.head]
            if len(head.all_input_nodes) != 1:
                raise InversionError(
                    f"The head {classifier.head!r} of {classifier.name} takes "
                    f"{len(head.all_input_nodes)} inputs; '{PENULTIMATE}' cannot be a cut."
                )
            cuts.append(head.all_input_nodes[0])
        order = {node: i for i, node in enumerate(root.graph.nodes)}
        positions = [order[node] for node in cuts]
        if positions != sorted(positions) or len(set(positions)) != len(positions):
            raise InversionError(
                f"Layers {layers} are not in forward order (or two name the same output); "
                f"list them as the forward pass reaches them."
            )
        self.classifier_name = classifier.name
        self.layers = layers
        self.prepare = _Prepare(classifier)
        segments = []
        for k, end in enumerate(cuts):
            start = cuts[k - 1] if k > 0 else None
            flatten = layers[k] == PENULTIMATE
            segments.append(_segment(root, start, end, flatten, layers[k - 1] if k else ""))
        self.blocks = nn.ModuleList(segments)
        self.requires_grad_(False)
        super().train(False)
        weight = next(iter(classifier.parameters()), torch.empty(0))
        with torch.no_grad():  # probe where the classifier is (it may be on a GPU already)
            probe = torch.zeros(2, *image_shape, device=weight.device, dtype=weight.dtype)
            self.shapes = [tuple(h.shape[1:]) for h in self.prefix(probe)]

    def train(self, mode: bool = True) -> ClassifierBlocks:
        """Stay in eval mode (the blocks share the frozen classifier's layers)."""
        return super().train(False)

    def __len__(self) -> int:
        return len(self.blocks)

    def block(self, k: int, h: Tensor) -> Tensor:
        """Run f_k (1-based) on the output of layer k-1 (images for k = 1)."""
        if k == 1:
            h = self.prepare(h)
        return self.blocks[k - 1](h)

    def prefix(self, images: Tensor, depth: int | None = None) -> list[Tensor]:
        """``[h_0, h_1, ..., h_depth]``: the images and the outputs of layers 1..depth.

        Only the blocks up to ``depth`` (default: all) are run.
        """
        depth = len(self.blocks) if depth is None else depth
        outputs = [images]
        for k in range(1, depth + 1):
            outputs.append(self.block(k, outputs[-1]))
        return outputs

    def forward(self, images: Tensor, depth: int | None = None) -> Tensor:
        """The output of layer ``depth`` (default: the last) for images in [0, 1]."""
        return self.prefix(images, depth)[-1]

    def extra_repr(self) -> str:  # noqa: D102
        return f"classifier={self.classifier_name!r}, layers={self.layers}, shapes={self.shapes}"


def split_classifier(
    classifier: ImageClassifier, layers: Sequence[str], image_shape: tuple[int, int, int]
) -> ClassifierBlocks:
    """Cut ``classifier`` at ``layers`` (see :class:`ClassifierBlocks`)."""
    return ClassifierBlocks(classifier, layers, image_shape)


def default_layers(classifier: ImageClassifier) -> list[str]:
    """The classifier's suggested feature layers, then ``penultimate`` if it has a head."""
    layers = list(classifier.feature_layers)
    if classifier.head is not None:
        layers.append(PENULTIMATE)
    if not layers:
        raise InversionError(
            f"{classifier.name} suggests no layers to cut at; name them (see "
            "ImageClassifier.layer_names())."
        )
    return layers
