"""Loading weights files and this project's classifier checkpoints, safely."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inversion.errors import InversionError

CHECKPOINT_KEYS = ("classifier", "num_classes")


def _existing_file(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise InversionError(
            f"{what} not found: {path}. Check the path (relative paths are taken from "
            f"{Path.cwd()})."
        )
    return path


def load_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """Load a ``torch.save`` file with ``weights_only=True`` (no arbitrary code runs)."""
    path = _existing_file(path, "Checkpoint or weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if "Unsupported global" in ln]
        raise InversionError(
            f"{path} holds objects other than tensors and plain containers, so it cannot be "
            "loaded safely with weights_only=True. Save a state_dict instead "
            f"(torch.save(model.state_dict(), ...)). {' '.join(lines)}"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise InversionError(f"{path} is not a readable PyTorch file: {err}") from err
    if not isinstance(obj, dict):
        raise InversionError(f"{path} holds a {type(obj).__name__}, not a dict of tensors.")
    return obj


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict from a ``.pt``/``.pth``/``.ckpt`` or ``.safetensors`` file.

    Nested ``{"state_dict": ...}`` / ``{"model": ...}`` dicts are unwrapped, a
    ``module.`` prefix (from DataParallel/DDP) is removed, and checkpoints of the
    robustness library (``model.*``, ``attacker.*``, ``normalizer.*``) give their
    ``model.*`` network.
    """
    path = _existing_file(path, "Weights file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: dict[str, Any] = load_file(str(path))
    else:
        state = load_checkpoint_file(path)
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    if any(k.startswith("attacker.") for k in state) and any(k.startswith("model.") for k in state):
        # a robustness-library checkpoint: the network, its copy inside the attacker and
        # the normaliser; keep the network (this project's wrapper normalises itself)
        state = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    return state


def load_weights_into(
    net: nn.Module,
    path: str | Path,
    name: str,
    rename: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> None:
    """Load a weights file into ``net`` strictly, with a readable error on mismatch.

    ``rename`` maps the file's key names to ``net``'s (e.g. another library's layout).
    """
    state = load_state_dict_file(path)
    if rename is not None:
        state = rename(state)
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise InversionError(
            f"Weights file {path} does not fit {name}: {str(err).splitlines()[-1].strip()} "
            "Is it for this architecture, with the same num_classes and in_chans?"
        ) from err
    problems = []
    if result.missing_keys:
        problems.append(f"missing {len(result.missing_keys)} keys (e.g. {result.missing_keys[:3]})")
    if result.unexpected_keys:
        problems.append(
            f"{len(result.unexpected_keys)} unexpected keys (e.g. {result.unexpected_keys[:3]})"
        )
    if problems:
        raise InversionError(
            f"Weights file {path} does not match {name}: {'; '.join(problems)}. Is it for "
            "this architecture, with the same num_classes and in_chans?"
        )


def is_classifier_checkpoint(obj: dict[str, Any]) -> bool:
    """Whether a loaded file is a checkpoint of this project's classifier module."""
    hparams = obj.get("hyper_parameters")
    return isinstance(hparams, dict) and all(k in hparams for k in CHECKPOINT_KEYS)


def module_substate(checkpoint: Mapping[str, Any], module: str) -> dict[str, torch.Tensor]:
    """The state dict of one submodule (``model``, ``generator``, ...) of a Lightning checkpoint.

    The one way this project reads part of a module's checkpoint: the entries of its
    ``state_dict`` under ``<module>.``, with that prefix removed (empty if there are none).
    """
    prefix = f"{module}."
    state = checkpoint.get("state_dict") or {}
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
