"""The speed benchmarks' harness: interleaved rounds, per-round ratios, median and spread."""

import importlib

import pytest

from benchmarks import speed_summary
from benchmarks.timing import (
    COMPILED_KS,
    KS,
    SpeedScript,
    Timings,
    interleave,
    module_loops,
    module_row,
)


def test_interleave_rotates_the_order_and_divides_within_each_round():
    calls: list[str] = []
    # the bare loop's time changes from round to round (a noisy machine); the other
    # loop is always twice as slow in the same round
    bare_times = iter([9.0, 1.0, 2.0, 4.0])  # warm-up, then three rounds

    def bare(steps: int) -> float:
        calls.append(f"bare{steps}")
        return next(bare_times)

    slow_times = iter([9.0, 2.0, 4.0, 8.0])

    def slow(steps: int) -> float:
        calls.append(f"slow{steps}")
        return next(slow_times)

    timings = interleave({"bare": bare, "slow": slow}, steps=7, repeats=3, warmup=2)
    assert calls == ["bare2", "slow2", "bare7", "slow7", "slow7", "bare7", "bare7", "slow7"]
    assert timings.ratios("slow") == [2.0, 2.0, 2.0]
    assert timings.ratio("slow") == (2.0, 2.0, 2.0)
    assert timings.bare_ms() == 2000.0


def test_median_and_spread_of_the_ratios():
    timings = Timings({"bare": [1.0, 1.0, 1.0, 1.0], "module": [1.1, 0.9, 1.5, 1.0]})
    median, low, high = timings.ratio("module")
    assert (low, high) == (0.9, 1.5) and abs(median - 1.05) < 1e-12
    assert timings.cell("module") == "1.05 (0.90-1.50)"
    assert "| module | 1050.0 | 1.05 (0.90-1.50) |" in timings.table()


def _fake_script(tables: int = 1) -> SpeedScript:
    """A script whose loops take fixed times: the bare one 2 ms, the module 2 ms x K."""

    def arguments(parser) -> None:
        parser.add_argument("--batch", type=int, default=8)

    def measure(args):
        def at(k: int, compile: bool):
            return lambda steps: 0.002 * k / (2 if compile else 1)

        loops = {"bare": lambda steps: 0.002}
        loops.update(module_loops("module", at, args.steps_per_training_step, args.compiled))
        timings = interleave(loops, args.steps, args.repeats)
        return timings if tables == 1 else {f"phase {i}": timings for i in range(tables)}

    return SpeedScript(
        "Fake benchmark.\n\nMore.", arguments, measure, lambda a: f"b{a.batch}", 7, True
    )


def test_the_shared_main_parses_the_shared_options_and_prints_one_table(capsys):
    script = _fake_script()
    args = script.parse([])
    assert (args.steps, args.repeats, args.threads, args.batch) == (7, 5, 2, 8)
    assert args.steps_per_training_step == list(KS) and args.compiled == list(COMPILED_KS)
    assert script.parse(["--compiled"]).compiled == []

    tables = script.main(["--device", "cpu", "--repeats", "3", "--batch", "4", "--threads", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("b4; device cpu, torch ")
    assert "1 threads, 3 interleaved rounds of 7 steps" in lines[0]
    names = [line.split(" | ")[0].lstrip("| ") for line in lines[3:]]
    expected = [module_row("module", k) for k in KS]
    expected += [module_row("module", k, compiled=True) for k in COMPILED_KS]
    assert names == ["bare", *expected]
    assert len(lines) == 3 + 1 + len(KS) + len(COMPILED_KS)  # header, table head, rows
    (timings,) = tables.values()
    assert timings.cell(module_row("module", 4)) == "4.00 (4.00-4.00)"
    assert timings.cell(module_row("module", 16, compiled=True)) == "8.00 (8.00-8.00)"


def test_the_shared_main_prints_one_titled_table_per_part(capsys):
    tables = _fake_script(tables=2).main(["--repeats", "1", "--compiled"])
    out = capsys.readouterr().out
    assert list(tables) == ["phase 0", "phase 1"]
    assert out.count("| loop | ms / step (median) |") == 2
    assert "\nphase 1:\n" in out and ", compiled" not in out


def test_k_below_one_is_one_clear_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _fake_script().parse(["--steps-per-training-step", "0"])
    assert exit_info.value.code == 2
    assert "error: K (steps per training step) must be at least 1" in capsys.readouterr().err


SCRIPTS = [
    "class_inversion_speed",
    "dominant_patterns_speed",
    "conditioned_generator_speed",
    "layerwise_speed",
    "robust_prior_speed",
]


@pytest.mark.parametrize(
    ("name", "steps", "step_wise"),
    [
        ("class_inversion_speed", 40, True),
        ("dominant_patterns_speed", 100, True),
        ("conditioned_generator_speed", 30, True),
        ("layerwise_speed", 20, True),  # 4 steps per block x 5 blocks
        ("robust_prior_speed", 6, False),
    ],
)
def test_every_speed_script_uses_the_shared_main(name, steps, step_wise):
    module = importlib.import_module(f"benchmarks.{name}")
    script = module.SCRIPT
    assert isinstance(script, SpeedScript) and script.step_wise == step_wise
    args = script.parse(["--device", "cpu"])
    assert script.timed_steps(args) == steps and args.device == "cpu"
    assert hasattr(args, "compiled") == step_wise


def test_the_readme_speed_table_finds_every_row_it_reads(monkeypatch):
    # the loops are built but not run: each script's interleave returns 1 ms per loop
    def no_timing(loops, steps, repeats, warmup=5):
        return Timings({name: [0.001] * repeats for name in loops})

    for name in SCRIPTS:
        monkeypatch.setattr(f"benchmarks.{name}.interleave", no_timing)
    monkeypatch.setattr(speed_summary, "pin_threads", lambda threads: threads)  # leave ours
    lines = speed_summary.table().splitlines()
    head, rows = lines[2], lines[4:]
    columns = ["module, K=1", "K=4", "K=16", "compiled, K=1", "compiled, K=16"]
    assert head == "| benchmark | bare ms | engine | " + " | ".join(columns) + " |"
    assert len(rows) == 7  # CI, DP, CG, LW x 2 phases, robust x 2 (use_best)
    for row in rows:
        cells = row.strip("| ").split(" | ")
        assert len(cells) == 3 + len(columns) and cells[1] == "1.0", row
        assert all(cell in ("-", "1.00 (1.00-1.00)") for cell in cells[2:]), row
