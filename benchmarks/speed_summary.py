"""The README's speed table: every ``*_speed.py`` benchmark on this machine, with spreads.

It times the LightningModules, so it is not a ``*_table.py`` (those take nothing from them).

Each row runs one benchmark's ``measure`` with its default arguments (interleaved rounds,
``benchmarks.timing``) and reports the bare loop's median ms/step and the engine's and
the module's ratios to it (median, min-max over rounds); the step-wise modules also for
``steps_per_training_step`` K = 4 and 16. Written by ``python -m benchmarks.update_readme
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
from benchmarks.timing import Timings, pin_threads

THREADS = 2
KS = (1, 4, 16)


def _module_cells(timings: Timings, prefix: str) -> list[str]:
    return [timings.cell(f"{prefix}, K={k}") for k in KS]


def table() -> str:
    """One row per benchmark; ratios are median (min-max) over interleaved rounds."""
    threads = pin_threads(THREADS)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    ci = class_inversion_speed.measure(device=device, ks=KS)
    rows.append(
        [
            "class inversion, `digits:cnn`, 40 images x ensemble 4 (`class_inversion_speed`)",
            f"{ci.bare_ms():.1f}",
            ci.cell("engine (ClassInverter.step)"),
            *_module_cells(ci, "module (ClassInversion + Trainer)"),
        ]
    )
    dp = dominant_patterns_speed.measure(device=device, ks=KS)
    rows.append(
        [
            "dominant pattern, batch 32 (`dominant_patterns_speed`)",
            f"{dp.bare_ms():.1f}",
            dp.cell("engine (UniversalPattern + PatternObjective)"),
            *_module_cells(dp, "module (DominantPatterns + Trainer)"),
        ]
    )
    cg = conditioned_generator_speed.measure(device=device, ks=KS)
    rows.append(
        [
            "conditioned generator, batch 64 (`conditioned_generator_speed`)",
            f"{cg.bare_ms():.1f}",
            "-",
            *_module_cells(cg, "module (ConditionedGeneratorInversion + Trainer)"),
        ]
    )
    for phase in ("blockwise", "resync"):
        lw = layerwise_speed.measure(phase, device=device, ks=KS)
        rows.append(
            [
                f"layer-wise, {phase} phase, batch 32 (`layerwise_speed`)",
                f"{lw.bare_ms():.1f}",
                lw.cell("engine (phase_loss + Adam)"),
                *_module_cells(lw, "module (LayerwiseInversion + Trainer)"),
            ]
        )
    args = robust_prior_speed.parser().parse_args(["--device", device])
    rp = robust_prior_speed.measure(args)
    for use_best in (False, True):
        rows.append(
            [
                f"robust training, `digits:cnn`, b128, PGD-7, use_best={use_best} "
                "(`robust_prior_speed`)",
                f"{rp.bare_ms():.1f}",
                rp.cell(f"engine: PGD + update (use_best={use_best})"),
                rp.cell(f"module: RobustClassifierModule + Trainer (use_best={use_best})"),
                "-",
                "-",
            ]
        )
    head = [
        f"Device {device}, torch {torch.__version__}, {threads} threads; ratio to the bare "
        "loop: median (min-max) over 5 interleaved rounds.",
        "",
        "| benchmark | bare ms | engine | module, K=1 | K=4 | K=16 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(head + ["| " + " | ".join(row) + " |" for row in rows])
