"""Loading weights files and this project's classifier checkpoints, safely."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Mapping
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


def _what_to_do(path: Path) -> str:
    """How to recover from an unreadable file: delete a cache file, else replace it."""
    from inversion.paths import cache_dir

    try:
        path.resolve().relative_to(cache_dir().resolve())
    except ValueError:
        return (
            "Give the file that was saved (a state_dict, or a .ckpt a run wrote), or save it again."
        )
    return (
        f"It is a cache file of this project: delete it (rm '{path}') and rerun; it is "
        "rebuilt on first use."
    )


def _reason(err: BaseException) -> str:
    """A loader's error type and the first sentence of its message, on one line."""
    first = " ".join(str(err).split()).split(". ")[0].rstrip(".")[:160]
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def load_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """Load a ``torch.save`` file with ``weights_only=True`` (no arbitrary code runs).

    The one check of every checkpoint, weights and cache file this project reads: a
    missing, empty, truncated or corrupt file, a file that is not PyTorch's, one that
    holds pickled objects other than tensors and plain containers, or one that holds no
    dict, each ends in one :class:`InversionError` naming the file and what to do (for
    a file in the project's cache: delete it).
    """
    path = _existing_file(path, "Checkpoint or weights file")
    if path.stat().st_size == 0:
        raise InversionError(
            f"{path} is empty (0 bytes): it was never written completely. {_what_to_do(path)}"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if "Unsupported global" in ln]
        if not lines:
            found = [ln.strip() for ln in str(err).splitlines() if "Unsupported" in ln]
            raise InversionError(
                f"{path} cannot be loaded safely (weights_only=True): it is not a PyTorch file "
                "of tensors and plain containers (torch.save), or it is corrupt "
                f"({found[0] if found else _reason(err)}). {_what_to_do(path)}"
            ) from err
        raise InversionError(
            f"{path} holds objects other than tensors and plain containers, so it cannot be "
            "loaded safely with weights_only=True. Save a state_dict instead "
            f"(torch.save(model.state_dict(), ...)). {' '.join(lines)}"
        ) from err
    except Exception as err:  # any failure to decode the file is a bad file, not a bug
        raise InversionError(
            f"{path} is truncated, corrupt or not a PyTorch file ({_reason(err)}). "
            f"{_what_to_do(path)}"
        ) from err
    if not isinstance(obj, dict):
        raise InversionError(f"{path} holds a {type(obj).__name__}, not a dict of tensors.")
    return obj


def _load_safetensors(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:  # SafetensorError and friends: a bad file, not a bug
        raise InversionError(
            f"{path} is not a valid safetensors file ({_reason(err)}): it is truncated, "
            f"corrupt or of another format. {_what_to_do(path)}"
        ) from err


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict from a ``.pt``/``.pth``/``.ckpt`` or ``.safetensors`` file.

    Nested ``{"state_dict": ...}`` / ``{"model": ...}`` dicts are unwrapped, a
    ``module.`` prefix (from DataParallel/DDP) is removed, and checkpoints of the
    robustness library (``model.*``, ``attacker.*``, ``normalizer.*``) give their
    ``model.*`` network.
    """
    path = _existing_file(path, "Weights file")
    if path.suffix == ".safetensors":
        state: dict[str, Any] = _load_safetensors(path)
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
    odd = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if odd:
        raise InversionError(
            f"{path} is not a state dict: {len(odd)} entries are not tensors (e.g. "
            f"{odd[:3]}). Give a file of torch.save(model.state_dict(), ...)."
        )
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


# ``ckpt_path`` values Lightning resolves itself (not file paths)
LIGHTNING_CKPT_KEYWORDS = ("last", "best", "hpc", "registry")


def read_run_checkpoint(path: str | Path | None) -> dict[str, Any] | None:
    """Load a ``ckpt_path`` (resume or evaluate a run) safely, or None for no file.

    The file must load safely (:func:`load_checkpoint_file`) and be a checkpoint a
    training run wrote (Lightning's, with a ``state_dict``). None and Lightning's
    keywords (``last``, ``best``, ``hpc``, ``registry...``) are left to Lightning.

    Raises:
        InversionError: Naming the file and what is wrong with it.
    """
    if path is None or str(path).split(":")[0] in LIGHTNING_CKPT_KEYWORDS:
        return None
    checkpoint = load_checkpoint_file(path)
    if (
        not isinstance(checkpoint.get("state_dict"), dict)
        or "pytorch-lightning_version" not in checkpoint
    ):
        raise InversionError(
            f"{path} is not a checkpoint a training run wrote (no Lightning state_dict); "
            "ckpt_path takes a run's .ckpt file, e.g. "
            "runs/NAME/version_N/checkpoints/last.ckpt (a classifier's weights go in "
            "weights=PATH or the classifier spec instead)."
        )
    return checkpoint


def check_checkpoint_entries(path: str | Path, entries: Iterable[str], module: nn.Module) -> None:
    """Refuse a run checkpoint that lacks entries of ``module``'s state dict (another model's).

    Only missing entries count: a module may build parts in ``setup``, after this check.
    A module with ``strict_loading = False`` is not checked.

    Raises:
        InversionError: Naming the file, the module and a few missing entries.
    """
    present = set(entries)
    missing = [key for key in module.state_dict() if key not in present]
    if missing and getattr(module, "strict_loading", True):
        raise InversionError(
            f"{path} is a checkpoint of another model: it lacks {len(missing)} of this "
            f"{type(module).__name__}'s entries (e.g. {missing[:3]}). Give a checkpoint "
            "of a run of the same config."
        )


def check_run_checkpoint(path: str | Path | None, module: nn.Module) -> None:
    """Check a ``ckpt_path`` before the run: readable, a run's, and ``module``'s.

    Raises:
        InversionError: See :func:`read_run_checkpoint` and
            :func:`check_checkpoint_entries`.
    """
    checkpoint = read_run_checkpoint(path)
    if checkpoint is not None and path is not None:
        check_checkpoint_entries(path, checkpoint["state_dict"], module)
