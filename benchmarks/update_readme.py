"""Write computed tables into README.md between ``<!-- table:NAME -->`` markers.

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

Every number in a README table comes from here: the table's function computes it (the
zoo trains on first use) and the README text between the markers is replaced.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _zoo() -> str:
    from inversion.models.zoo import zoo_table

    return zoo_table()


def _real_digits() -> str:
    import contextlib
    import io
    import tempfile

    from model_inversion import evaluate

    config = README.parent / "configs" / "digits" / "real_images.yaml"
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


def replace_table(text: str, name: str, table: str) -> str:
    """Return ``text`` with the block between the markers of ``name`` set to ``table``."""
    pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table:{name} -->)", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- table:{name} --> ... <!-- /table:{name} -->")
    return pattern.sub(lambda m: m.group(1) + table.strip() + "\n" + m.group(2), text)


def main() -> None:
    """Recompute the named tables and write them into README.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", help=f"any of {list(TABLES)} (default: all)")
    names = parser.parse_args().tables or list(TABLES)
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        parser.error(f"unknown tables {unknown}; choose from {list(TABLES)}")
    for name in names:
        table = TABLES[name]()
        print(table)
        # read and write around each table only: edits made while it computed are kept
        README.write_text(replace_table(README.read_text(), name, table))


if __name__ == "__main__":
    main()
