"""evaluate and generate on jsonargparse: config files, earlier spellings, the results table."""

import json
from pathlib import Path

import pytest
import yaml

from inversion.errors import InversionError
from model_inversion import evaluate, generate

REPO = Path(__file__).resolve().parents[1]


def printed_config(capsys, parse, argv: list[str]) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        parse([*argv, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_scorer_options_come_from_image_scorer(capsys):
    import inspect

    from inversion.metrics.scorer import ImageScorer

    with pytest.raises(SystemExit):
        evaluate.parse_arguments(["folder", "--help"])
    shown = capsys.readouterr().out
    for name in inspect.signature(ImageScorer).parameters:
        assert (f"--{name} " in shown) == (name != "fid"), name  # fid: given --reference
    assert "--config CONFIG" in shown and "--print_config" in shown


def test_earlier_spellings_parse_as_the_new_ones():
    old = ["folder", "imgs", "--verifiers", "digits:vit", "digits:mlp", "--no-is", "--no-kid"]
    old += ["--batch-size", "8", "--num-workers", "1", "--inception-weights", "w.pth"]
    new = ["folder", "imgs", "--verifiers=[digits:vit, digits:mlp]", "--inception_score=false"]
    new += ["--kid=false", "--batch_size=8", "--num_workers=1", "--inception_weights=w.pth"]
    assert evaluate.parse_arguments(old) == evaluate.parse_arguments(new)
    command, args = evaluate.parse_arguments(old)
    assert command == "folder" and args.verifiers == ["digits:vit", "digits:mlp"]
    options = evaluate.metric_options(args)
    assert options["inception_score"] is False and options["kid"] is False
    assert generate.parse_arguments(
        ["--ckpt", "c", "--out", "o", "--per-class", "3", "--classes", "1", "2", "--adversarial"]
    ) == generate.parse_arguments(
        ["--ckpt=c", "--out=o", "--per_class=3", "--classes=[1, 2]", "--adversarial"]
    )


def test_options_round_trip_through_a_config_file(tmp_path, capsys):
    argv = ["folder", "imgs", "--verifiers", "digits:vit", "--feature", "digits:cnn"]
    argv += ["--splits", "3", "--out", "scores"]
    config = printed_config(capsys, evaluate.parse_arguments, argv)
    assert config["verifiers"] == ["digits:vit"] and config["splits"] == 3
    path = tmp_path / "score.yaml"
    path.write_text(yaml.safe_dump(config))
    from_file = evaluate.parse_arguments(["folder", "--config", str(path)])[1].as_dict()
    direct = evaluate.parse_arguments(argv)[1].as_dict()
    assert from_file.pop("config") and direct.pop("config") is None and from_file == direct
    one = printed_config(capsys, generate.parse_arguments, ["--ckpt", "c", "--out", "o"])
    (tmp_path / "generate.yaml").write_text(yaml.safe_dump({**one, "per_class": 5}))
    args = generate.parse_arguments(["--config", str(tmp_path / "generate.yaml")])
    assert (args.ckpt, args.per_class, args.rule) == ("c", 5, "majority")


def test_run_config_is_a_training_config_by_file_or_shipped_name(tmp_path, capsys):
    saved = REPO / "configs" / "digits" / "real_images.yaml"
    for given in (str(saved), "digits/real_images.yaml"):
        _, args = evaluate.parse_arguments(["run", "--config", given, "--feature", "none"])
        assert Path(evaluate.resolve_config(args.run_config)).resolve() == saved.resolve()
    # a config of this command's own options stays that
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump({"run_config": str(saved), "splits": 2}))
    _, args = evaluate.parse_arguments(["run", "--config", str(own)])
    assert args.run_config == str(saved) and args.splits == 2


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["folder", "imgs", "--verifers", "digits:vit"], "verifers"),
        (["folder", "imgs", "--batch-size", "0"], "--batch_size: must be at least 1, got 0"),
        (["folder", "imgs", "--splits", "0"], "--splits must be at least 1"),
        ([], "a subcommand is required"),
        (["run", "--config", "digits/nowhere.yaml"], "not found"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, says):
    with pytest.raises(InversionError) as error:
        evaluate.parse_arguments(argv)
    assert says in str(error.value) and "\n" not in str(error.value)


def record(out: Path, name: str, metrics: dict) -> None:
    evaluate.write_results(out, name, metrics, {})


def test_results_table_columns_follow_the_metrics(tmp_path):
    out = tmp_path / "out"
    record(out, "folder", {"images": 10, "top1_digits-vit": 0.5, "is": 2.0, "is_std": 0.1})
    first = (out / "results.md").read_text().splitlines()
    assert first[0] == "| run | images | verifier top-1 | IS | features |"
    assert first[2] == "| folder | 10 | 0.5 | 2 | inception |"
    record(out, "patterns", {"images": 4, "fooling_rate": 0.25, "dominance": 0.75})
    record(out, "layers", {"images": 4, "psnr": 21.5, "ssim": 0.5, "agree_verifiers": 1.0})
    lines = (out / "results.md").read_text().splitlines()
    assert lines[0] == (
        "| run | images | verifier top-1 | IS | PSNR | SSIM | verifier agreement "
        "| fooling rate | dominance | features |"
    )
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| folder", "| patterns", "| layers"]
    assert lines[3] == "| patterns | 4 | - | - | - | - | - | 0.25 | 0.75 | - |"
    assert lines[4] == "| layers | 4 | - | - | 21.5 | 0.5 | 1 | - | - | - |"
    saved = json.loads((out / "patterns.json").read_text())
    assert saved["metrics"]["fooling_rate"] == 0.25
