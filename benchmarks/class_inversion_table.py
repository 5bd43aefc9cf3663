"""The class-inversion table of the embedded digits benchmark (README), and its ablation.

For each target in {digits:cnn, digits:vit, digits:mlp} and each recipe that applies
(DeepInversion needs batch norm), invert 4 images per class with the same number of
optimisation steps, then score them with the other digits models (verifier top-1/top-5),
and IS / FID with digits:resnet features (FID against the digits train split). Wall time
is the inversion alone, on this machine. The ablation varies PII's ensemble size.

    python -m benchmarks.class_inversion_table            # prints both tables
    python -m benchmarks.update_readme class_inversion    # writes them into README.md
"""

from __future__ import annotations

import time
from typing import Any

import torch

from inversion import build_classifier
from inversion.class_inversion import ClassInverter, recipe_from
from inversion.metrics.scorer import ImageScorer

ZOO = ["digits:cnn", "digits:resnet", "digits:vit", "digits:mlp"]
TARGETS = ["digits:cnn", "digits:vit", "digits:mlp"]
IMAGES_PER_CLASS = 4
# Equal budgets: PII 7 zoom stages x 40 steps; DeepDream/DeepInversion 180 + 100 steps.
OPTIONS: dict[str, dict[str, Any]] = {  # recipe options (recipe_from)
    "pii": {
        "steps_per_stage": 40,
        "ensemble": 4,
        "color_shift_mean": 0.25,
        "color_shift_log_std": 0.25,
    },
    "deepdream": {"low_res_steps": 180, "steps_per_stage": 100, "warmup_steps": 20},
    "deepinversion": {"low_res_steps": 180, "steps_per_stage": 100, "warmup_steps": 20},
}
HEADER = (
    "| target | recipe | steps | verifier top-1 | verifier top-5 | IS (digits-resnet) "
    "| FID (digits-resnet) | time (s) |\n|---|---|---:|---:|---:|---:|---:|---:|"
)


def run(target: str, recipe: str, options: dict, seed: int = 0) -> dict[str, float]:
    """Invert every class of ``target`` and score the images; returns the metrics."""
    torch.manual_seed(seed)
    model = build_classifier(target).freeze()
    labels = torch.arange(10).repeat_interleave(IMAGES_PER_CLASS)
    inverter = ClassInverter(
        model, recipe_from(recipe, options), 32, 1, torch.Generator().manual_seed(seed)
    )
    start = time.perf_counter()
    images = inverter.invert(labels)
    seconds = time.perf_counter() - start
    scorer = ImageScorer(
        verifiers=[v for v in ZOO if v != target], feature="digits:resnet", splits=4
    )
    scorer.set_reference("digits:train", progress=False)
    scorer.update(images, labels)
    return {**scorer.compute(), "time": seconds, "steps": inverter.total_steps}


def row(target: str, recipe: str, metrics: dict[str, float]) -> str:
    """One Markdown row."""
    return (
        f"| `{target}` | {recipe} | {metrics['steps']} | {metrics['top1_verifiers']:.3f} | "
        f"{metrics['top5_verifiers']:.3f} | {metrics['is_digits-resnet']:.2f} | "
        f"{metrics['fid_digits-resnet']:.2f} | {metrics['time']:.0f} |"
    )


def main_table() -> str:
    """Targets x recipes."""
    rows = [HEADER]
    for target in TARGETS:
        for recipe, options in OPTIONS.items():
            if recipe == "deepinversion" and target != "digits:cnn":
                continue  # no batch norm in the ViT and ResMLP: DeepInversion does not apply
            rows.append(row(target, recipe, run(target, recipe, options)))
        print(rows[-1], flush=True)
    rows.append(
        row(
            "digits:cnn",
            "pii, ColorShift ±1 (spec's ranges)",
            run(
                "digits:cnn",
                "pii",
                {**OPTIONS["pii"], "color_shift_mean": 1.0, "color_shift_log_std": 1.0},
            ),
        )
    )
    return "\n".join(rows)


def ensemble_table(target: str = "digits:vit") -> str:
    """PII's ensemble size: accuracy against cost."""
    rows = [HEADER]
    for ensemble in (1, 2, 4, 8):
        metrics = run(target, "pii", {**OPTIONS["pii"], "ensemble": ensemble})
        rows.append(row(target, f"pii, ensemble {ensemble}", metrics))
        print(rows[-1], flush=True)
    return "\n".join(rows)


def tables() -> str:
    """Both tables, as the README shows them."""
    return main_table() + "\n\nEnsemble-size ablation (PII on `digits:vit`):\n\n" + ensemble_table()


if __name__ == "__main__":
    print(tables())
