"""Score produced images: verifier top-1/top-5, Inception Score, FID and KID.

Two ways in, one set of metrics (the same ``ImageScorer`` the callbacks use):

    # (a) a folder of images (class subfolders, or a flat folder with a labels file)
    python evaluate.py folder IMAGES --verifiers digits:vit --reference digits:test

    # (b) a trained run: its config and checkpoint, test loop on one device
    python evaluate.py run --config runs/x/version_0/config.yaml --ckpt runs/x/.../last.ckpt

Each evaluation writes ``<out>/<name>.json``, appends a row to ``<out>/results.md`` and
prints that table. ``<name>`` is ``--name`` (default: the scored folder's or the run's path
relative to the working directory) made a plain file name; an existing result is never
replaced (``-2``, ``-3``, ... is appended). Offline, Inception needs
``--inception-weights PATH``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import time
from pathlib import Path

import torch

from inversion.data.image_files import scan_image_folder
from inversion.errors import InversionError, exit_on_user_error
from inversion.metrics.reference import image_files_loader
from inversion.metrics.scorer import ImageScorer
from inversion.models.weights import load_checkpoint_file

TABLE_HEADER = (
    "| run | images | verifier top-1 | verifier top-5 | IS | FID | KID | features |\n"
    "|---|---:|---:|---:|---:|---:|---:|---|\n"
)


def read_labels_file(path: Path, files: list[Path]) -> list[int]:
    """Labels for a flat folder from lines ``filename,label`` (or whitespace-separated)."""
    if not path.is_file():
        raise InversionError(f"Labels file not found: {path}.")
    table: dict[str, int] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.replace(",", " ").split()
        if not parts or parts[0].startswith("#") or parts[0] in ("file", "filename"):
            continue
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise InversionError(f"{path}:{number}: expected 'filename,label', got {line!r}.")
        table[parts[0]] = int(parts[1])
    missing = [f.name for f in files if f.name not in table]
    if missing:
        raise InversionError(
            f"{path} gives no label for {len(missing)} image(s), e.g. {missing[:3]}."
        )
    return [table[f.name] for f in files]


def folder_labels(folder: Path, labels_file: Path | None) -> tuple[list[Path], list[int]]:
    """Files and labels: class folders named by integers give those labels; others sorted."""
    files, labels, classes = scan_image_folder(folder)
    if labels_file is not None:
        return files, read_labels_file(labels_file, files)
    if classes and all(name.isdigit() for name in classes):
        labels = [int(classes[label]) for label in labels]
    return files, labels


def metric_options(args: argparse.Namespace) -> dict:
    """The ImageScorer options given on the command line."""
    return {
        "verifiers": args.verifiers,
        "feature": None if args.feature == "none" else args.feature,
        "inception_weights": args.inception_weights,
        "fid": args.reference is not None,
        "inception_score": not args.no_is,
        "splits": args.splits,
        "kid": args.reference is not None and not args.no_kid,
    }


def scorer_from_args(args: argparse.Namespace) -> ImageScorer:
    """Build the scorer, with its FID reference, from command-line options."""
    scorer = ImageScorer(**metric_options(args)).to(args.device)
    if args.reference is not None:
        scorer.set_reference(args.reference, args.batch_size)
    return scorer


def score_folder(args: argparse.Namespace) -> dict[str, float]:
    """Score every image of a folder (with a progress bar)."""
    from tqdm.auto import tqdm

    files, labels = folder_labels(Path(args.images), args.labels)  # errors before any model
    scorer = scorer_from_args(args)
    loader = image_files_loader(files, labels, args.batch_size, args.num_workers)
    has_labels = any(label >= 0 for label in labels)
    for images, batch_labels in tqdm(loader, desc=f"scoring {args.images}", file=sys.stderr):
        images = images.to(args.device)
        scorer.update(images, batch_labels.to(args.device) if has_labels else None)
    return scorer.compute()


def subcommand_keys() -> set[str]:
    """Top-level keys of a subcommand's config that ``score_run``'s parser does not take.

    A ``fit``/``validate``/``test``/``predict`` config carries the Trainer method's own
    arguments (``ckpt_path``, ``weights_only``, ``verbose``, ...).
    """
    from lightning.pytorch import Trainer
    from lightning.pytorch.cli import LightningCLI

    keys: set[str] = set()
    for method, skipped in LightningCLI.subcommands().items():
        parameters = inspect.signature(getattr(Trainer, method)).parameters
        keys.update(name for name in parameters if name != "self" and name not in skipped)
    return keys


def evaluation_config(path: Path) -> str:
    """A run's config for the evaluation parser (a file path, or YAML text).

    The file itself, or, when it carries subcommand keys (the ``config.yaml``
    LightningCLI saves into a run's log folder has ``ckpt_path``, ``weights_only``), its
    YAML text without them (the checkpoint to score is ``--ckpt``). Other keys
    (``seed_everything``, ``optimizer``, ``lr_scheduler``, ``trainer``, ``model``,
    ``data``) are taken as they are.
    """
    import yaml

    if not path.is_file():
        raise InversionError(f"Config file not found: {path}.")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise InversionError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise InversionError(f"{path} is not a config (a YAML mapping of options).")
    dropped = subcommand_keys()
    if not dropped & set(config):
        return str(path)
    return yaml.safe_dump({k: v for k, v in config.items() if k not in dropped})


def score_run(args: argparse.Namespace) -> dict[str, float]:
    """Run a trained run's test loop on one device with the metric callbacks."""
    import train
    from callbacks import ImageMetrics

    if args.ckpt is not None:
        load_checkpoint_file(args.ckpt)  # refuses unsafe or unreadable files, before any model
    overrides = [
        "--config",
        evaluation_config(Path(args.config)),
        "--trainer.devices=1",
        "--trainer.num_nodes=1",
        "--trainer.strategy=auto",
        "--trainer.logger=false",
    ]
    cli = train.main(overrides, run=False)
    callbacks = cli.trainer.callbacks  # type: ignore[attr-defined]  # set by Lightning at init, undeclared
    metric_callbacks = [c for c in callbacks if isinstance(c, ImageMetrics)]
    if args.verifiers or not metric_callbacks:
        extra = ImageMetrics(**metric_options(args), reference=args.reference, log_hparams=False)
        callbacks.append(extra)
        metric_callbacks.append(extra)
    safe = {}
    if "weights_only" in inspect.signature(cli.trainer.test).parameters:
        safe["weights_only"] = True  # older Lightning: torch>=2.6 loads weights-only by default
    cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=args.ckpt, **safe)
    results: dict[str, float] = {}
    for callback in metric_callbacks:
        results.update(callback.results.get("test", {}))
    return results


def _pick(results: dict[str, float], *prefixes: str) -> str:
    for prefix in prefixes:
        for key, value in results.items():
            if key == prefix or (key.startswith(prefix) and not key.endswith("_std")):
                return f"{value:.4g}"
    return "-"


def markdown_cell(text: str) -> str:
    """Text for one Markdown table cell: ``|`` escaped, line breaks made spaces."""
    return re.sub(r"[\r\n]+", " ", text).replace("|", "\\|")


def safe_file_name(text: str) -> str:
    """``text`` as one plain file name: no separators, no ``..``, no leading dot."""
    name = re.sub(r"[^A-Za-z0-9._+=-]+", "_", text).lstrip("._")
    return name[:120] or "result"


def default_name(path: Path) -> str:
    """A result name for ``path``: its path relative to the working directory, if inside."""
    resolved = path.resolve()
    try:
        relative = resolved.relative_to(Path.cwd().resolve())
    except ValueError:
        relative = resolved
    return "_".join(part for part in relative.parts if part not in ("/", "")) or resolved.name


def unique_stem(out: Path, name: str) -> str:
    """``name`` made a safe file name, with ``-2``, ``-3``, ... if ``<out>/<name>.json`` exists."""
    base = safe_file_name(name)
    stem, number = base, 1
    while (out / f"{stem}.json").exists():
        number += 1
        stem = f"{base}-{number}"
    return stem


def check_out(out: Path) -> None:
    """Refuse an output folder that cannot be one (before any scoring)."""
    if out.exists() and not out.is_dir():
        raise InversionError(f"--out {out} is an existing file, not a folder; name a folder.")
    table = out / "results.md"
    if table.exists() and not table.is_file():
        raise InversionError(f"{table} exists and is not a file; choose another --out.")


def table_row(name: str, results: dict[str, float]) -> str:
    """One Markdown row: means over verifiers where there are several."""
    features = sorted(
        {
            k.split("_", 1)[1]
            for k in results
            if k.startswith(("fid_", "kid_", "is_")) and not k.endswith("_std")
        }
    ) or (["inception"] if "fid" in results or "is" in results else ["-"])
    images = results.get("images")
    return (
        f"| {markdown_cell(name)} | {int(images) if images is not None else '-'} | "
        f"{_pick(results, 'top1_verifiers', 'top1_')} | "
        f"{_pick(results, 'top5_verifiers', 'top5_')} | {_pick(results, 'is')} | "
        f"{_pick(results, 'fid')} | {_pick(results, 'kid')} | "
        f"{markdown_cell(', '.join(features))} |\n"
    )


def write_results(out: Path, name: str, results: dict[str, float], options: dict) -> Path:
    """Write ``<out>/<stem>.json`` and append a row to ``<out>/results.md``.

    ``stem`` is ``name`` made a safe file name, numbered if that result exists already:
    nothing is written outside ``out`` and no result is replaced.
    """
    check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = unique_stem(out, name)
    target = out / f"{stem}.json"
    if target.resolve().parent != out.resolve():  # cannot happen for a safe file name
        raise InversionError(f"Result name {name!r} would be written outside {out}.")
    record = {
        "name": stem,
        "metrics": results,
        "options": options,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "torch": str(torch.__version__),
    }
    with target.open("x") as handle:  # never replaces an existing result
        handle.write(json.dumps(record, indent=2, default=str))
    table = out / "results.md"
    if not table.is_file():
        table.write_text(TABLE_HEADER)
    with table.open("a") as handle:
        handle.write(table_row(stem, results))
    return table


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (subcommands ``folder`` and ``run``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    folder = sub.add_parser("folder", help="score a folder of images")
    folder.add_argument("images", help="folder: class subfolders, or flat with --labels")
    folder.add_argument("--labels", type=Path, help="file of 'filename,label' lines")
    run = sub.add_parser("run", help="score a trained run (config + checkpoint), one device")
    run.add_argument("--config", type=Path, required=True, help="the run's config.yaml")
    run.add_argument("--ckpt", help="checkpoint to load (default: the config's weights)")
    for each in (folder, run):
        each.add_argument("--verifiers", nargs="*", default=[], help="classifier specs")
        each.add_argument(
            "--feature",
            default="inception",
            help="'inception', a classifier spec (e.g. digits:resnet), or 'none'",
        )
        each.add_argument("--inception-weights", help="local InceptionV3 weights file")
        each.add_argument("--reference", help="FID/KID reference: digits:SPLIT or an image folder")
        each.add_argument("--splits", type=int, default=10, help="Inception Score splits")
        each.add_argument("--no-is", action="store_true", help="skip the Inception Score")
        each.add_argument("--no-kid", action="store_true", help="skip KID (FID only)")
        each.add_argument("--batch-size", type=int, default=64)
        each.add_argument("--num-workers", type=int, default=0)
        each.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        each.add_argument(
            "--name",
            help="result name, made a plain file name inside --out; numbered if taken "
            "(default: the folder's or the config folder's path relative to here)",
        )
        each.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    return parser


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Parse arguments, score, write JSON and Markdown, print the table."""
    args = build_parser().parse_args(argv)
    check_out(args.out)  # before any scoring
    if args.command == "folder":
        results = score_folder(args)
        name = args.name or default_name(Path(args.images))
    else:
        results = score_run(args)
        name = args.name or default_name(Path(args.config).parent)
    options = {k: v for k, v in vars(args).items() if k != "command"}
    table = write_results(args.out, name, results, options)
    print(json.dumps(results, indent=2))
    print(table.read_text())
    return results


def run_from_command_line() -> None:
    """Entry point: bad input ends in its one-line message and exit status 2."""
    exit_on_user_error(main)


if __name__ == "__main__":
    run_from_command_line()
