"""Sample a trained conditioned generator: per-class folders, adversarial samples.

::

    # interpretability: 100 samples of every class, in folders inversion-evaluate scores
    inversion-generate --ckpt runs/.../checkpoints/last.ckpt --per_class 100 --out samples/all

    # adversarial samples: kept only where the target says c and most verifiers do not
    inversion-generate --ckpt CKPT --per_class 100 --out samples/adv --adversarial
        --verifiers digits:resnet digits:vit digits:mlp       (one line)

(``python generate.py ...`` in a checkout; the earlier spellings ``--per-class``,
``--batch-size`` still work.) ``--config FILE`` holds these options (``--print_config``
writes one). Images go to ``OUT/images/<class index>/<n>.png`` (``inversion-evaluate folder
OUT/images`` scores them), a per-class sheet (up to 16 a row) to ``OUT/sheet.png`` and the
counts and rates to ``OUT/summary.json``.
The target classifier is the run's (from the checkpoint's hyperparameters).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from jsonargparse import ActionYesNo, ArgumentParser, Namespace
from jsonargparse.typing import NonNegativeInt, PositiveInt
from torchvision.utils import save_image

from inversion.conditioned_generator import (
    ADVERSARIAL_RULES,
    adversarial_samples,
    generator_from_checkpoint,
    sample_classes,
    write_class_folders,
)
from inversion.errors import InversionError, exit_on_user_error
from inversion.models import build_classifier
from inversion.models.weights import load_checkpoint_file
from inversion.visual import class_grid
from model_inversion.command_line import (
    add_config_argument,
    checked_device,
    legacy_argv,
    new_parser,
    parse,
)

LIST_OPTIONS = ("classes", "verifiers")


def target_of(ckpt: str) -> torch.nn.Module:
    """The run's frozen target classifier, rebuilt from the checkpoint's hyperparameters."""
    hp = load_checkpoint_file(ckpt).get("hyper_parameters", {})
    return build_classifier(
        hp["classifier"],
        num_classes=hp.get("classifier_num_classes"),
        input_size=hp.get("input_size"),
        pretrained=hp.get("pretrained"),
        weights=hp.get("weights"),
    ).freeze()


def check_new_folder(out: Path) -> None:
    """Refuse ``--out`` unless it is a new or empty folder (a file, or a file above it)."""
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise InversionError(f"--out {out}: {blocking} is a file, not a folder; name a new folder.")
    if out.exists() and any(out.iterdir()):
        raise InversionError(f"{out} exists and is not empty; choose a new folder.")


def build_parser() -> ArgumentParser:
    """The command-line parser."""
    parser = new_parser(description=__doc__.splitlines()[0])
    add_config_argument(parser)
    parser.add_argument("--ckpt", type=str, required=True, help="Checkpoint of a generator run.")
    parser.add_argument("--out", type=str, required=True, help="New folder for the images.")
    parser.add_argument(
        "--per_class", type=PositiveInt, default=100, help="Samples drawn per class."
    )
    parser.add_argument(
        "--classes",
        type=list[NonNegativeInt] | None,
        default=None,
        help="Class indices (default: all).",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of the latents, noise and dropout masks."
    )
    parser.add_argument(
        "--adversarial",
        action=ActionYesNo,
        default=False,
        help="Keep only the adversarial samples (needs --verifiers).",
    )
    parser.add_argument(
        "--verifiers",
        type=list[str],
        default=[],
        help="Independent classifiers (specs) for --adversarial.",
    )
    parser.add_argument(
        "--rule",
        type=Literal[ADVERSARIAL_RULES],  # type: ignore[valid-type]
        default="majority",
        help="Adversarial when most verifiers (majority) or every verifier (all) disagree.",
    )
    parser.add_argument(
        "--batch_size", type=PositiveInt, default=256, help="Samples per forward pass."
    )
    parser.add_argument(
        "--device",
        type=str,
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="Torch device to sample on.",
    )
    return parser


def parse_arguments(argv: Sequence[str] | None = None) -> Namespace:
    """The options, checked (bad ones: an InversionError)."""
    argv = legacy_argv(sys.argv[1:] if argv is None else argv, LIST_OPTIONS, {})
    args = parse(build_parser(), argv)
    args.device = checked_device(args.device)
    return args


def main(argv: list[str] | None = None) -> dict:
    """Sample, optionally keep the adversarial samples, write folders and a summary."""
    args = parse_arguments(argv)
    if args.adversarial and not args.verifiers:
        raise InversionError("--adversarial needs --verifiers (classifiers other than the target).")
    out = Path(args.out)
    check_new_folder(out)  # before any sampling

    generator = generator_from_checkpoint(args.ckpt)
    classes = args.classes if args.classes else list(range(generator.num_classes))
    outside = sorted({c for c in classes if c >= generator.num_classes})
    if outside:
        raise InversionError(
            f"--classes {outside} are outside 0..{generator.num_classes - 1}: the "
            f"generator has {generator.num_classes} classes."
        )
    images, labels = sample_classes(
        generator, classes, args.per_class, args.seed, args.batch_size, args.device
    )
    summary: dict = {"ckpt": str(args.ckpt), "samples": len(labels), "seed": args.seed}
    if args.adversarial:
        target = target_of(args.ckpt).to(args.device)
        verifiers = [build_classifier(spec).freeze().to(args.device) for spec in args.verifiers]
        found = adversarial_samples(target, verifiers, images, labels, args.rule)
        keep = found["adversarial"]
        summary.update(
            verifiers=args.verifiers,
            rule=args.rule,
            target_accepts=int(found["target_accepts"].sum()),
            adversarial=int(keep.sum()),
            adversarial_rate=float(found["adversarial_rate"]),
            adversarial_of_accepted=float(found["adversarial_of_accepted"]),
        )
        images, labels = images[keep], labels[keep]
        if len(labels) == 0:
            print(json.dumps(summary, indent=2))
            raise InversionError("No sample was adversarial; draw more (--per_class).")
    check_new_folder(out)
    write_class_folders(images, labels, out / "images")
    sheet = class_grid(images, labels, per_row=min(args.per_class, 16), upscale=2)
    save_image(sheet, out / "sheet.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2), file=sys.stdout)
    return summary


def run_from_command_line() -> None:
    """Entry point: bad input ends in its one-line message and exit status 2."""
    exit_on_user_error(main)


if __name__ == "__main__":
    run_from_command_line()
