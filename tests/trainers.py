"""The quiet CPU Trainer the module tests share (no logger, bar, summary or checkpoints)."""

import lightning.pytorch as pl

QUIET = {
    "accelerator": "cpu",
    "logger": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "enable_checkpointing": False,
    "num_sanity_val_steps": 0,
}


def quiet_trainer(**kwargs) -> pl.Trainer:
    """A Trainer with :data:`QUIET` settings; ``kwargs`` override or add to them."""
    return pl.Trainer(**{**QUIET, **kwargs})
