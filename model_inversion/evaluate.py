"""Score produced images: verifier top-1/top-5, Inception Score, FID and KID.

Two ways in, one set of metrics (the same ``ImageScorer`` the callbacks use; its options
are this command's: ``--verifiers``, ``--feature``, ``--splits``, ``--kid``, ...)::

    # (a) a folder of images (class subfolders, or a flat folder with a labels file)
    inversion-evaluate folder IMAGES --verifiers digits:vit digits:mlp --reference digits:test

    # (b) a trained run: its config and checkpoint, test loop on one device
    inversion-evaluate run --run_config runs/x/version_0/config.yaml --ckpt runs/x/.../last.ckpt

(``python evaluate.py ...`` in a checkout.) ``run --config RUN.yaml`` also names the run's
config when the file is a training config; otherwise ``--config FILE`` holds this
command's options (``--print_config`` writes one). Each evaluation writes
``<out>/<name>.json`` and rewrites ``<out>/results.md``, one row per result in ``<out>``
with a column for each metric the results have (PSNR, fooling rate, KID, ...), and prints
that table. ``<name>`` is ``--name`` (default: the scored folder's or the run's path
relative to the working directory) made a plain file name; an existing result is never
replaced (``-2``, ``-3``, ... is appended). Offline, Inception needs
``--inception_weights PATH``.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ArgumentParser, Namespace
from jsonargparse.typing import NonNegativeInt, PositiveInt

from inversion.data.image_files import scan_image_folder
from inversion.errors import InversionError, exit_on_user_error
from inversion.metrics.reference import image_files_loader
from inversion.metrics.scorer import ImageScorer
from inversion.models.weights import check_run_checkpoint
from model_inversion.command_line import (
    add_config_argument,
    at_least,
    checked_device,
    legacy_argv,
    new_parser,
    parse,
)
from model_inversion.config_files import resolve_config

LIST_OPTIONS = ("verifiers",)
RENAMED = {"--no-is": "--inception_score=false", "--no-kid": "--kid=false"}  # earlier flags
RUN_CONFIG_KEYS = {"model", "data", "trainer"}  # a training config has some of these

# results.md: a column per metric family the results have, these first in this order (a
# family is the metric and its per-model variants: top1, top1_verifiers, top1_digits-vit);
# other metrics (a module's own test metrics: dominance, clean_acc, ...) follow by name
COLUMNS = (
    ("top1", "verifier top-1"),
    ("top5", "verifier top-5"),
    ("is", "IS"),
    ("fid", "FID"),
    ("kid", "KID"),
    ("psnr", "PSNR"),
    ("ssim", "SSIM"),
    ("agree", "verifier agreement"),
    ("fooling_rate", "fooling rate"),
)
FEATURE_FAMILIES = ("is", "fid", "kid")


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
    """Files and labels: a labels file's, else the class folders' (``class_labels``' rule).

    Class folders are labelled as ``ImageFolderDataModule`` labels them: all named by
    numbers, by that number; otherwise by position in sorted name order.
    """
    files, labels, _ = scan_image_folder(folder)
    if labels_file is not None:
        return files, read_labels_file(labels_file, files)
    return files, labels


def metric_options(args: Namespace) -> dict:
    """The ImageScorer options given on the command line (FID and KID need --reference)."""
    has_reference = args.reference is not None
    return {
        "verifiers": list(args.verifiers),
        "feature": None if args.feature in (None, "none") else args.feature,
        "inception_weights": args.inception_weights,
        "fid": has_reference,
        "inception_score": args.inception_score,
        "splits": args.splits,
        "kid": has_reference and args.kid is not False,
    }


def scorer_from_args(args: Namespace) -> ImageScorer:
    """Build the scorer, with its FID reference, from command-line options."""
    scorer = ImageScorer(**metric_options(args)).to(args.device)
    if args.reference is not None:
        scorer.set_reference(args.reference, args.batch_size)
    return scorer


def score_folder(args: Namespace) -> dict[str, float]:
    """Score every image of a folder (with a progress bar)."""
    from tqdm.auto import tqdm

    files, labels = folder_labels(
        Path(args.images), args.labels and Path(args.labels)
    )  # errors before any model
    scorer = scorer_from_args(args)
    scorer.check_labels(max(labels))  # a class a verifier lacks: before any scoring
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


def score_run(args: Namespace) -> dict[str, float]:
    """Run a trained run's test loop on one device with the metric callbacks.

    The results are the metric callbacks' and the module's own test metrics (a dominant
    pattern's fooling rate, ...), without their ``test/`` prefix.
    """
    from model_inversion import train
    from model_inversion.callbacks import ImageMetrics

    overrides = [
        "--config",
        evaluation_config(Path(resolve_config(args.run_config))),
        "--trainer.devices=1",
        "--trainer.num_nodes=1",
        "--trainer.strategy=auto",
        "--trainer.logger=false",
    ]
    argv, sys.argv = sys.argv, sys.argv[:1]  # the overrides are the CLI's only arguments
    try:
        cli = train.main(overrides, run=False)
    finally:
        sys.argv = argv
    check_run_checkpoint(args.ckpt, cli.model)  # unsafe, unreadable or foreign: before the run
    callbacks = cli.trainer.callbacks  # type: ignore[attr-defined]  # set by Lightning at init, undeclared
    metric_callbacks = [c for c in callbacks if isinstance(c, ImageMetrics)]
    if args.verifiers or not metric_callbacks:
        extra = ImageMetrics(**metric_options(args), reference=args.reference, log_hparams=False)
        callbacks.append(extra)
        metric_callbacks.append(extra)
    safe = {}
    if "weights_only" in inspect.signature(cli.trainer.test).parameters:
        safe["weights_only"] = True  # older Lightning: torch>=2.6 loads weights-only by default
    logged = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=args.ckpt, **safe)
    results: dict[str, float] = {
        key.removeprefix("test/"): float(value)
        for metrics in logged
        for key, value in metrics.items()
        if key.startswith("test/")
    }
    for callback in metric_callbacks:
        results.update(callback.results.get("test", {}))
    return results


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
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise InversionError(
            f"--out {out} is inside {blocking}, which is a file, not a folder; name a folder."
        )
    table = out / "results.md"
    if table.exists() and not table.is_file():
        raise InversionError(f"{table} exists and is not a file; choose another --out.")


def family(key: str) -> str:
    """The metric family of a result key (its column): ``fid_digits-resnet`` -> ``fid``."""
    for name, _ in COLUMNS:
        if key == name or key.startswith(f"{name}_"):
            return name
    return key


def summary(results: dict[str, float], name: str) -> str:
    """A family's cell: the mean over verifiers, the plain metric, else its first variant."""
    keys = [f"{name}_verifiers", name] + sorted(
        k for k in results if family(k) == name and not k.endswith("_std")
    )
    value = next((results[k] for k in keys if k in results), None)
    return "-" if value is None else f"{value:.4g}"


def features(results: dict[str, float]) -> str:
    """The feature extractors behind the IS/FID/KID cells."""
    named = sorted(
        {
            k.split("_", 1)[1]
            for k in results
            if family(k) in FEATURE_FAMILIES and "_" in k and not k.endswith("_std")
        }
    )
    plain = any(k in results for k in FEATURE_FAMILIES)
    return ", ".join(named or (["inception"] if plain else ["-"]))


def results_table(records: Sequence[dict[str, Any]]) -> str:
    """The Markdown table of results: a column for each metric family any of them has."""
    found = {family(k) for r in records for k in r["metrics"] if not k.endswith("_std")}
    found.discard("images")
    known = [name for name, _ in COLUMNS if name in found]
    columns = known + sorted(found - set(known))
    titles = dict(COLUMNS)
    header = ["run", "images", *(titles.get(c, c) for c in columns)]
    rule = ["---", "---:", *("---:" for _ in columns)]
    with_features = bool(found & set(FEATURE_FAMILIES))
    if with_features:
        header.append("features")
        rule.append("---")
    lines = [header, rule]
    for record in records:
        metrics = record["metrics"]
        images = metrics.get("images")
        row = [record["name"], "-" if images is None else str(int(images))]
        row += [summary(metrics, c) for c in columns]
        if with_features:
            row.append(features(metrics))
        lines.append(row)
    return "".join(
        "| " + " | ".join(markdown_cell(cell) for cell in line) + " |\n" for line in lines
    )


def saved_records(out: Path) -> list[dict[str, Any]]:
    """The results saved in ``out``, in the order ``results.md`` lists them, new ones last."""
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(out.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name)):
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # not a result of this command
        if isinstance(record, dict) and isinstance(record.get("metrics"), dict):
            records[path.stem] = {**record, "name": path.stem}
    table = out / "results.md"
    listed = []
    if table.is_file():
        for line in table.read_text().splitlines()[2:]:
            name = line.removeprefix("| ").split(" | ", 1)[0]
            if name in records and name not in listed:
                listed.append(name)
    return [records[n] for n in listed] + [r for n, r in records.items() if n not in listed]


def write_results(out: Path, name: str, results: dict[str, float], options: dict) -> Path:
    """Write ``<out>/<stem>.json`` and rewrite ``<out>/results.md`` with its row.

    ``stem`` is ``name`` made a safe file name, numbered if that result exists already:
    nothing is written outside ``out`` and no result is replaced. The table lists every
    result in ``out`` (in the order it did, new ones last), with a column for each metric
    any of them has.
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
    table.write_text(results_table(saved_records(out)))
    return table


def add_scoring_arguments(parser: ArgumentParser) -> None:
    """The options both subcommands take: ImageScorer's, the reference, the output."""
    parser.add_class_arguments(ImageScorer, nested_key=None, skip={"fid"}, fail_untyped=False)
    parser.add_argument(
        "--reference",
        type=str | None,
        default=None,
        help="FID/KID reference: digits:SPLIT or an image folder (no reference: no FID/KID).",
    )
    parser.add_argument("--batch_size", type=PositiveInt, default=64, help="Images per batch.")
    parser.add_argument(
        "--num_workers", type=NonNegativeInt, default=0, help="Image-loading processes."
    )
    parser.add_argument(
        "--device",
        type=str,
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="Torch device to score on.",
    )
    parser.add_argument(
        "--name",
        type=str | None,
        default=None,
        help="Result name, made a plain file name inside --out; numbered if taken "
        "(default: the folder's or the config folder's path relative to here).",
    )
    parser.add_argument("--out", type=str, default="results", help="Output folder.")


def build_parser() -> ArgumentParser:
    """The command-line parser (subcommands ``folder`` and ``run``)."""
    parser = new_parser(description=__doc__.splitlines()[0])
    subcommands = parser.add_subcommands(required=True, dest="command")
    folder = new_parser(description="Score a folder of images.")
    add_config_argument(folder)
    folder.add_argument("images", type=str, help="Folder: class subfolders, or flat with --labels.")
    folder.add_argument(
        "--labels", type=str | None, default=None, help="File of 'filename,label' lines."
    )
    run = new_parser(description="Score a trained run (config + checkpoint) on one device.")
    add_config_argument(run)
    run.add_argument(
        "--run_config",
        type=str,
        required=True,
        help="The run's config (its config.yaml, or the training config; a file or a "
        "shipped config's name). Also accepted as --config.",
    )
    run.add_argument(
        "--ckpt", type=str | None, default=None, help="Checkpoint (default: the config's)."
    )
    for each in (folder, run):
        add_scoring_arguments(each)
    subcommands.add_subcommand("folder", folder, help="Score a folder of images.")
    subcommands.add_subcommand(
        "run", run, help="Score a trained run (config + checkpoint), one device."
    )
    return parser


def is_training_config(value: str) -> bool:
    """Whether a ``--config`` value names a training config (not this command's options)."""
    import yaml

    path = Path(resolve_config(value))
    if not path.is_file():
        return False
    try:
        config = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(config, dict) and bool(RUN_CONFIG_KEYS & set(config))


def run_config_alias(argv: Sequence[str]) -> list[str]:
    """``run --config RUN.yaml`` (the earlier spelling) as ``run --run_config RUN.yaml``."""
    out = list(argv)
    if "run" not in out:
        return out
    for i in range(out.index("run") + 1, len(out)):
        if out[i] in ("--config", "-c") and i + 1 < len(out) and is_training_config(out[i + 1]):
            out[i] = "--run_config"
        elif out[i].startswith("--config=") and is_training_config(out[i][len("--config=") :]):
            out[i] = "--run_config=" + out[i][len("--config=") :]
    return out


def parse_arguments(argv: Sequence[str] | None = None) -> tuple[str, Namespace]:
    """The subcommand and its options, checked (bad ones: an InversionError)."""
    argv = legacy_argv(sys.argv[1:] if argv is None else argv, LIST_OPTIONS, RENAMED)
    config = parse(build_parser(), run_config_alias(argv))
    command = config.command
    args = config[command]
    at_least(args.splits, 1, "--splits")
    args.device = checked_device(args.device)
    return command, args


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Parse arguments, score, write JSON and Markdown, print the table."""
    command, args = parse_arguments(argv)
    out = Path(args.out)
    check_out(out)  # before any scoring
    if command == "folder":
        results = score_folder(args)
        name = args.name or default_name(Path(args.images))
    else:
        results = score_run(args)
        name = args.name or default_name(Path(args.run_config).parent)
    options = {k: v for k, v in args.as_dict().items() if k != "config"}
    table = write_results(out, name, results, options)
    print(json.dumps(results, indent=2))
    print(table.read_text())
    return results


def run_from_command_line() -> None:
    """Entry point: bad input ends in its one-line message and exit status 2."""
    exit_on_user_error(main)


if __name__ == "__main__":
    run_from_command_line()
