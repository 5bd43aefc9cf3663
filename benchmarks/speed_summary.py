"""The README's speed table: every ``*_speed.py`` benchmark on this machine, with spreads.

It times the LightningModules, so it is not a ``*_table.py`` (those take nothing from them).

Each row runs one benchmark's ``SCRIPT.measure`` with its default options (interleaved
rounds, ``benchmarks.timing``) and reports the bare loop's median ms/step and the engine's
and the module's ratios to it (median, min-max over rounds); the step-wise modules at
``steps_per_training_step`` K = 1, 4 and 16 (``timing.KS``), then with ``compile=True``
at K = 1 and 16 (``timing.COMPILED_KS``). Written by ``python -m benchmarks.update_readme
speed``; slow (minutes per row on two CPU cores).
"""

from __future__ import annotations

import torch

from benchmarks import (
    class_inversion_speed,
    conditioned_generator_speed,
    dominant_patterns_speed,
    layerwise_speed,
    robust_prior_speed,
)
from benchmarks.timing import COMPILED_KS, KS, SpeedScript, Timings, module_row, pin_threads

THREADS = 2
REPEATS = 5  # the scripts' default --repeats


def _module_cells(timings: Timings, prefix: str) -> list[str]:
    eager = [timings.cell(module_row(prefix, k)) for k in KS]
    return eager + [timings.cell(module_row(prefix, k, compiled=True)) for k in COMPILED_KS]


def _no_module_cells(module: str) -> list[str]:
    return [module] + ["-"] * (len(KS) + len(COMPILED_KS) - 1)


def _measure(script: SpeedScript, device: str) -> dict[str, Timings]:
    """The script's tables with its default options on ``device``."""
    return script.tables(script.parse(["--device", device, "--repeats", str(REPEATS)]))


def table() -> str:
    """One row per benchmark; ratios are median (min-max) over interleaved rounds."""
    threads = pin_threads(THREADS)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    ci = _measure(class_inversion_speed.SCRIPT, device)[""]
    rows.append(
        [
            "class inversion, `digits:cnn`, 40 images x ensemble 4 (`class_inversion_speed`)",
            f"{ci.bare_ms():.1f}",
            ci.cell("engine (ClassInverter.step)"),
            *_module_cells(ci, class_inversion_speed.MODULE),
        ]
    )
    dp = _measure(dominant_patterns_speed.SCRIPT, device)[""]
    rows.append(
        [
            "dominant pattern, batch 32 (`dominant_patterns_speed`)",
            f"{dp.bare_ms():.1f}",
            dp.cell("engine (UniversalPattern + PatternObjective)"),
            *_module_cells(dp, dominant_patterns_speed.MODULE),
        ]
    )
    cg = _measure(conditioned_generator_speed.SCRIPT, device)[""]
    rows.append(
        [
            "conditioned generator, batch 64 (`conditioned_generator_speed`)",
            f"{cg.bare_ms():.1f}",
            "-",
            *_module_cells(cg, conditioned_generator_speed.MODULE),
        ]
    )
    for phase, lw in _measure(layerwise_speed.SCRIPT, device).items():  # one per phase
        rows.append(
            [
                f"layer-wise, {phase} phase, batch 32 (`layerwise_speed`)",
                f"{lw.bare_ms():.1f}",
                lw.cell("engine (phase_loss + Adam)"),
                *_module_cells(lw, layerwise_speed.MODULE),
            ]
        )
    rp = _measure(robust_prior_speed.SCRIPT, device)[""]
    for use_best in (False, True):
        rows.append(
            [
                f"robust training, `digits:cnn`, b128, PGD-7, use_best={use_best} "
                "(`robust_prior_speed`)",
                f"{rp.bare_ms():.1f}",
                rp.cell(f"engine: PGD + update (use_best={use_best})"),
                *_no_module_cells(
                    rp.cell(f"module: RobustClassifierModule + Trainer (use_best={use_best})")
                ),
            ]
        )
    columns = [f"module, K={KS[0]}", *(f"K={k}" for k in KS[1:])]
    columns += [f"compiled, K={k}" for k in COMPILED_KS]
    head = [
        f"Device {device}, torch {torch.__version__}, {threads} threads; ratio to the bare "
        f"loop: median (min-max) over {REPEATS} interleaved rounds.",
        "",
        "| benchmark | bare ms | engine | " + " | ".join(columns) + " |",
        "|---|---:|---:|" + "---:|" * len(columns),
    ]
    return "\n".join(head + ["| " + " | ".join(row) + " |" for row in rows])
