"""Short, unique metric names for classifier specs (``top1_<name>``, ``fid_<name>``).

A zoo or hub spec keeps its name (``digits:resnet`` -> ``digits-resnet``). A checkpoint
path is named by its file: ``runs/shapes/version_3/checkpoints/last.ckpt`` ->
``shapes-v3-last`` (a Lightning run: experiment, version, file), ``models/mine.pt`` ->
``mine``. When several specs would get the same name, the colliding ones take one more
parent folder at a time until they differ (``a-model``, ``b-model``), and a spec given
twice gets ``-2``, ``-3``, ... An explicit ``name=spec`` (e.g.
``mine=runs/shapes/version_3/checkpoints/last.ckpt``) sets the name itself.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path

from inversion.errors import InversionError
from inversion.models.specs import KINDS

CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".safetensors", ".bin")
SPEC_KINDS = tuple(kind.partition(":")[0] for kind in KINDS if ":" in kind)
EXPLICIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
LIGHTNING_VERSION = re.compile(r"version_(\d+)")
UNINFORMATIVE_FOLDERS = ("checkpoints",)  # Lightning's folder: says nothing about the model


def short_name(spec: str) -> str:
    """A metric-name-safe name for one spec (see the module docstring).

    Args:
        spec: A classifier spec, a checkpoint path or ``name=spec``.

    Returns:
        Letters, digits and ``-`` (``_`` too in an explicit name); no dots, so it can key
        a ``ModuleDict``.
    """
    name, spec = split_named_spec(spec)
    return name if name is not None else _candidates(spec)[0]


def split_named_spec(spec: str) -> tuple[str | None, str]:
    """``"mine=path.ckpt"`` -> ``("mine", "path.ckpt")``; a plain spec -> ``(None, spec)``.

    The text before the first ``=`` is a name only if it is one (letters, digits, ``_``,
    ``-``), the whole text is not an existing file, and the rest is a spec (``kind:NAME``,
    an existing file or a path): Lightning's ``epoch=3-step=100.ckpt`` stays a file name.
    """
    name, sep, rest = spec.partition("=")
    if not sep or not EXPLICIT_NAME.fullmatch(name) or Path(spec).expanduser().is_file():
        return None, spec
    named = (
        rest.partition(":")[0] in SPEC_KINDS
        or "/" in rest
        or "\\" in rest
        or Path(rest).expanduser().is_file()
    )
    return (name, rest) if named else (None, spec)


def unique_names(specs: Sequence[str], reserved: Collection[str] = ()) -> dict[str, str]:
    """Short names for several specs, distinct from one another.

    Args:
        specs: Classifier specs, checkpoint paths or ``name=spec`` strings, in order.
        reserved: Names the caller uses for something else (e.g. ``verifiers``, the
            mean over verifiers): a derived name that would be one is numbered.

    Returns:
        ``{name: spec}`` in the order of ``specs``, the ``name=`` prefixes removed.

    Raises:
        InversionError: If two explicit ``name=`` prefixes are the same, or one is
            reserved.
    """
    split = [split_named_spec(s) for s in specs]
    explicit = Counter(name for name, _ in split if name is not None)
    repeated = sorted(name for name, count in explicit.items() if count > 1)
    if repeated:
        raise InversionError(
            f"Two specs are named {repeated[0]!r}: give each name=spec a different name."
        )
    clash = sorted(set(explicit) & set(reserved))
    if clash:
        raise InversionError(f"The name {clash[0]!r} is reserved here; choose another name=.")
    candidates = [[name] if name is not None else _candidates(spec) for name, spec in split]
    level = [0] * len(split)
    while True:  # lengthen every colliding name that can still grow
        names = [c[i] for c, i in zip(candidates, level, strict=True)]
        counts = Counter(names)
        grow = [
            k
            for k, name in enumerate(names)
            if (counts[name] > 1 or name in reserved) and level[k] + 1 < len(candidates[k])
        ]
        if not grow:
            break
        for k in grow:
            level[k] += 1
    taken = set(explicit) | set(
        reserved
    )  # explicit names are reserved; a derived name never takes one
    result: dict[str, str] = {}
    for (name, spec), derived in zip(split, names, strict=True):
        if name is None:  # a spec given twice, or a derived name that is taken: number it
            name, n = derived, 2
            while name in result or name in taken:
                name, n = f"{derived}-{n}", n + 1
        result[name] = spec
    return result


def _sanitise(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def _folder_name(folder: str) -> str:
    """``version_3`` -> ``v3`` (Lightning's run folders); other folders as they are."""
    version = LIGHTNING_VERSION.fullmatch(folder)
    return f"v{version.group(1)}" if version else folder


def _candidates(spec: str) -> list[str]:
    """Names of growing length for a spec: one for a zoo/hub spec, more for a path."""
    if spec.partition(":")[0] in SPEC_KINDS:  # timm:NAME, digits:NAME, ...
        return [_sanitise(spec) or "model"]
    path = Path(spec.replace("\\", "/"))
    stem = path.name[: -len(path.suffix)] if path.suffix in CHECKPOINT_SUFFIXES else path.name
    folders = [p for p in path.parent.parts if p not in ("/", ".", "..", "~")]
    parts = [_folder_name(f) for f in folders if f not in UNINFORMATIVE_FOLDERS]
    first = 1
    # a Lightning run (.../NAME/version_N/checkpoints/FILE): name it NAME-vN-FILE
    if (
        len(folders) >= 2
        and folders[-1] == "checkpoints"
        and LIGHTNING_VERSION.fullmatch(folders[-2])
    ):
        first = min(3, len(parts) + 1)
    names = []
    for count in range(first, len(parts) + 2):
        name = _sanitise("-".join([*parts[len(parts) - count + 1 :], stem]))
        if name and name not in names:
            names.append(name)
    return names or [_sanitise(spec) or "model"]
