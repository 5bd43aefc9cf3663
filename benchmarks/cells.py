"""A cache of table cells: one JSON file per (table, recipe, seed), built up over runs.

The digits tables take hours on 2 cores; each cell (one method, one setting, one seed)
is computed once and kept under ``<cache>/tables/<table>/``. The key holds every field
that defines the cell plus a digest of the source files the numbers depend on, so a code
change recomputes exactly the cells it could move. Delete the folder to start afresh::

    metrics = cached_cell("class_inversion", {"target": "digits:cnn", "seed": 0},
                          lambda: run(...), sources=["inversion/class_inversion"])
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from inversion.errors import InversionError
from inversion.paths import cache_dir, cached_torch_file, file_lock

ROOT = Path(__file__).resolve().parents[1]
FORMAT = 2  # bump when the file layout or the key changes


def code_of(source: str) -> str:
    """The code of a Python file without its comments, docstrings and layout.

    What the numbers depend on: editing a comment or a docstring keeps the cached cells.
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(tree)


def source_digest(sources: Iterable[str]) -> str:
    """Short hash of the code (:func:`code_of`) of the Python files under ``sources``.

    Paths are relative to the repository.
    """
    digest = hashlib.sha1()
    for source in sorted(sources):
        path = ROOT / source
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        if not files or not all(f.is_file() for f in files):
            raise FileNotFoundError(f"no source files at {path}")
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(code_of(file.read_text(encoding="utf-8")).encode())
    return digest.hexdigest()[:12]


def cell_key(table: str, fields: dict[str, Any], sources: Iterable[str] = ()) -> str:
    """The file name (without suffix) of one cell."""
    payload = {"format": FORMAT, "table": table, "fields": fields}
    payload["sources"] = source_digest(sources) if sources else None
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def zoo_keys(specs: Iterable[str]) -> dict[str, str]:
    """The zoo recipe key of each ``digits:`` model a cell uses, for the cell's fields.

    A cell keyed by them is recomputed when a zoo model is retrained from another recipe
    (cached results of the old weights are never scored against the new ones).
    """
    from inversion.models.zoo import ZOO

    return {spec: ZOO[spec.removeprefix("digits:")].key() for spec in specs}


def cached_cell(
    table: str,
    fields: dict[str, Any],
    compute: Callable[[], dict[str, float]],
    sources: Iterable[str] = (),
) -> dict[str, float]:
    """``compute()``'s metrics for this cell, computed once and kept as JSON.

    Args:
        table: Name of the table (a folder of the cache).
        fields: Everything that defines the cell (method, options, seed, ...); JSON-able.
        compute: Runs the cell; returns finite metrics by name.
        sources: Repository paths whose code the numbers depend on (their digest enters
            the key).

    Raises:
        InversionError: A cached file that is not a cell of this key (delete it).
    """
    sources = list(sources)
    path = cache_dir() / "tables" / table / f"{cell_key(table, fields, sources)}.json"
    if not path.is_file():
        with file_lock(path):
            if not path.is_file():
                metrics = {name: float(value) for name, value in compute().items()}
                if not all(math.isfinite(v) for v in metrics.values()):
                    raise InversionError(f"non-finite metrics for {table} {fields}: {metrics}")
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(json.dumps({"fields": fields, "metrics": metrics}, default=str))
                os.replace(tmp, path)
    try:
        record = json.loads(path.read_text())
        return {name: float(value) for name, value in record["metrics"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InversionError(
            f"corrupt table cell {path} ({error}); delete it and run the table again"
        ) from error


def cached_tensors(
    table: str,
    fields: dict[str, Any],
    compute: Callable[[], dict[str, torch.Tensor]],
    sources: Iterable[str] = (),
) -> dict[str, torch.Tensor]:
    """Like :func:`cached_cell` for what a cell produces (images, ...): kept as a ``.pt``.

    Cache what is slow to make (the inversion) rather than its scores, so that a change
    of the metrics rescores without recomputing; loaded with ``weights_only=True``.
    """
    sources = list(sources)
    path = cache_dir() / "tables" / table / f"{cell_key(table, fields, sources)}.pt"
    record = cached_torch_file(
        path, lambda: {**compute(), "fields": json.dumps(fields, default=str)}
    )
    return {name: value for name, value in record.items() if name != "fields"}
