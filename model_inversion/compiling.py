"""The ``compile`` option of the step-wise modules: ``torch.compile`` of what runs every step.

The maths under ``inversion/`` stays plain PyTorch; a module compiles, in place
(``nn.Module.compile``), the networks it hands to that maths (the frozen classifier,
the generator, the inverter blocks), so every call of theirs, wherever it is made,
runs the compiled code. Parameters, buffers and ``state_dict`` keys are unchanged, so
checkpoints of compiled and eager runs are interchangeable, and resuming is unchanged.

Two settings keep a compiled run the eager run:

- forward hooks registered after a module was compiled are honoured (the feature taps
  of ``ImageClassifier.forward_with_features``, DeepInversion's batch-norm statistics):
  by default dynamo guards on no hooks, and a hook added later would silently never
  run; here it guards on them and traces them (a new hook compiles anew once);
- random operations in compiled code draw as eager PyTorch does (inductor's
  ``fallback_random``), so dropout masks are the eager run's.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import torch
import torch._dynamo.config
from torch import nn

_COMPILED: weakref.WeakSet[nn.Module] = weakref.WeakSet()


def compile_in_place(modules: Iterable[nn.Module | None], dynamic: bool | None = False) -> None:
    """Compile each module's calls in place, once (later calls leave it as it is).

    Compilation is lazy: the first call of a module traces and compiles it (seconds),
    again for each new input shape (``dynamic=False``) or once with symbolic shapes
    (``dynamic=None`` after a shape changes: sizes that vary, such as zoom stages).

    Args:
        modules: The modules to compile (None entries are skipped).
        dynamic: ``torch.compile``'s ``dynamic``: False where the shapes are fixed.
    """
    # process-wide, and only ever stricter: guard on (and trace) the hooks of modules
    torch._dynamo.config.skip_nnmodule_hook_guards = False
    for module in modules:
        if module is None or module in _COMPILED:
            continue
        module.compile(dynamic=dynamic, options={"fallback_random": True})
        _COMPILED.add(module)
