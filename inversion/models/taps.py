"""Named feature taps: collect the outputs of modules during a forward pass."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import Tensor, nn

from inversion.errors import InversionError

PENULTIMATE = "penultimate"


def resolve_module(net: nn.Module, name: str) -> nn.Module:
    """Return the submodule called ``name``, or raise an error listing close names."""
    modules = dict(net.named_modules())
    if name in modules and name:
        return modules[name]
    close = difflib.get_close_matches(name, [n for n in modules if n], n=5, cutoff=0.5)
    hint = f" Close names: {', '.join(close)}." if close else ""
    raise InversionError(
        f"No layer named {name!r} in {type(net).__name__}.{hint} "
        "ImageClassifier.layer_names() lists every name that can be tapped."
    )


@contextmanager
def tap_features(
    net: nn.Module, layers: Sequence[str], head: str | None = None
) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of named modules while the block runs.

    Args:
        net: The network to tap.
        layers: Module names in ``net.named_modules()``; ``"penultimate"`` taps the
            (flattened) input of the module called ``head``.
        head: Name of the classification head, needed for ``"penultimate"``.

    Yields:
        A dict filled with ``{layer: output}`` as the forward pass runs.
    """
    features: dict[str, Tensor] = {}
    handles = []
    try:
        for layer in layers:
            if layer == PENULTIMATE:
                if head is None:
                    raise InversionError(
                        f"{type(net).__name__} has no known classification head, so "
                        "'penultimate' cannot be tapped; name a layer instead."
                    )

                def pre_hook(_module: nn.Module, inputs: tuple, key: str = layer) -> None:
                    features[key] = inputs[0].flatten(1)

                handles.append(resolve_module(net, head).register_forward_pre_hook(pre_hook))
            else:

                def hook(_module: nn.Module, _inputs: tuple, output: Tensor, key=layer) -> None:
                    features[key] = output

                handles.append(resolve_module(net, layer).register_forward_hook(hook))
        yield features
    finally:
        for handle in handles:
            handle.remove()
