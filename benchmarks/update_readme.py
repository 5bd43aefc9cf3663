"""Write computed tables into the page that holds their ``<!-- table:NAME -->`` markers.

    python -m benchmarks.update_readme zoo           # the embedded digits zoo
    python -m benchmarks.update_readme real_digits   # metrics of the real digits
    python -m benchmarks.update_readme class_inversion  # PII / DeepInversion / DeepDream
    python -m benchmarks.update_readme robust_prior     # robust training, representation tools
    python -m benchmarks.update_readme dominant_patterns  # universal patterns, transfer
    python -m benchmarks.update_readme conditioned_generator  # network inversion, ablation
    python -m benchmarks.update_readme layerwise     # zero-shot layer-wise inverters
    python -m benchmarks.update_readme gan_inversion # GAN inversion and repair
    python -m benchmarks.update_readme speed         # the speed benchmarks on this machine
    python -m benchmarks.update_readme peers         # the same work by torchattacks, Foolbox, ...

Every number in a table of the docs comes from here: the table's function computes it (the
zoo trains on first use) and the text between the markers is replaced, in the one file
among ``README.md`` and ``docs/**/*.md`` that holds them. Table functions name files
relative to the repository root (``docs/images/...``); links are rewritten relative to the
page the table lands in.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _zoo() -> str:
    from inversion.models.zoo import zoo_table

    return zoo_table()


def _real_digits() -> str:
    import contextlib
    import io
    import tempfile

    from model_inversion import evaluate

    config = ROOT / "configs" / "digits" / "real_images.yaml"
    out = Path(tempfile.mkdtemp())
    with contextlib.redirect_stdout(io.StringIO()):
        evaluate.main(
            [
                "run",
                "--config",
                str(config),
                "--out",
                str(out),
                "--name",
                "real digits (test split)",
            ]
        )
    return (out / "results.md").read_text()


def _class_inversion() -> str:
    from benchmarks.class_inversion_table import tables

    return tables()


def _robust_prior() -> str:
    from benchmarks.robust_prior_table import tables

    return tables()


def _dominant_patterns() -> str:
    from benchmarks.dominant_patterns_table import tables

    return tables()


def _conditioned_generator() -> str:
    from benchmarks.conditioned_generator_table import tables

    return tables()


def _layerwise() -> str:
    from benchmarks.layerwise_table import tables

    return tables()


def _gan_inversion() -> str:
    from benchmarks.gan_inversion_table import table

    return table()


def _peers() -> str:
    from benchmarks.peers import table

    return table()


def _speed() -> str:
    from benchmarks.speed_summary import table

    return table()


TABLES: dict[str, Callable[[], str]] = {
    "zoo": _zoo,
    "real_digits": _real_digits,
    "class_inversion": _class_inversion,
    "robust_prior": _robust_prior,
    "dominant_patterns": _dominant_patterns,
    "conditioned_generator": _conditioned_generator,
    "layerwise": _layerwise,
    "gan_inversion": _gan_inversion,
    "speed": _speed,
    "peers": _peers,
}


def pages(root: Path = ROOT) -> list[Path]:
    """The files that may hold table markers: ``README.md`` and ``docs/**/*.md``."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def page_with_marker(name: str, root: Path = ROOT) -> Path:
    """The one file under ``root`` that holds the markers of table ``name``.

    Raises:
        SystemExit: No file, or more than one, holds ``<!-- table:NAME -->``.
    """
    marker = f"<!-- table:{name} -->"
    found = [p for p in pages(root) if p.is_file() and marker in p.read_text()]
    if len(found) != 1:
        where = ", ".join(str(p.relative_to(root)) for p in found) or "no file"
        raise SystemExit(
            f"{marker} must be in exactly one of README.md and docs/**/*.md; found in {where}"
        )
    return found[0]


_LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def relative_links(table: str, page: Path, root: Path = ROOT) -> str:
    """``table`` with its relative link targets (named from ``root``) made relative to ``page``.

    Absolute addresses (``https://...``, ``/...``) and anchors (``#...``) are kept.
    """

    def rewrite(match: re.Match[str]) -> str:
        target = match.group(2)
        if target.startswith(("#", "/")) or "://" in target or target.startswith("mailto:"):
            return match.group(0)
        moved = Path(os.path.relpath(root / target, page.parent)).as_posix()
        return match.group(1) + moved + match.group(3)

    return _LINK.sub(rewrite, table)


def replace_table(text: str, name: str, table: str) -> str:
    """Return ``text`` with the block between the markers of ``name`` set to ``table``."""
    pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table:{name} -->)", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"no <!-- table:{name} --> ... <!-- /table:{name} --> block")
    return pattern.sub(lambda m: m.group(1) + table.strip() + "\n" + m.group(2), text)


def write_table(name: str, table: str, root: Path = ROOT) -> Path:
    """Write ``table`` between the markers of ``name`` in the page that holds them."""
    page = page_with_marker(name, root)
    # read and write around each table only: edits made while it computed are kept
    page.write_text(replace_table(page.read_text(), name, relative_links(table, page, root)))
    return page


def main() -> None:
    """Recompute the named tables and write each into the page that holds its markers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", help=f"any of {list(TABLES)} (default: all)")
    names = parser.parse_args().tables or list(TABLES)
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        parser.error(f"unknown tables {unknown}; choose from {list(TABLES)}")
    for name in names:
        page_with_marker(name)  # a missing marker fails before the table computes
        table = TABLES[name]()
        print(table)
        print(f"written into {write_table(name, table).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
