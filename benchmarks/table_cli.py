"""The command line of a table script: print its tables, or write its figures (``--figures``).

For example::

    python -m benchmarks.robust_prior_table              # prints the tables
    python -m benchmarks.robust_prior_table --figures    # writes the labelled figures
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path


def run_table_command(
    name: str,
    tables: Callable[[], str],
    figures: Callable[[], Sequence[Path]],
    argv: Sequence[str] | None = None,
) -> None:
    """Print ``tables()``, or with ``--figures`` write ``figures()`` and print their paths.

    A bad option exits with status 2 and one ``error:`` line (argparse's usage message).
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{name}",
        description="Print the table(s) as the README shows them, or write the figures.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--figures",
        action="store_true",
        help="write the labelled figures (docs/images/*.png; needs matplotlib: the "
        "'figures' extra) instead of printing the tables",
    )
    if parser.parse_args(argv).figures:
        print("wrote", *figures(), sep="\n  ")
    else:
        print(tables())
