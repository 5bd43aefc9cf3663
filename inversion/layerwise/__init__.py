"""Zero-shot layer-wise inversion: inverse blocks trained on synthetic data, then re-synced.

``inverters.py`` holds the inverse blocks and their stack (exported with
``torch.export``), ``schedule.py`` the blockwise / re-sync / naive schedule, the losses
and the plain-PyTorch training loop :func:`train_stack`. Splitting a classifier at named
layers is shared (``inversion/models/split.py``).

Wiring: ``model_inversion/lightning_modules/layerwise.py`` (``LayerwiseInversion``) and
``model_inversion/datamodules/layerwise.py`` (``SyntheticImagesDataModule``); configs
``configs/*/layerwise*.yaml``; table ``benchmarks/layerwise_table.py``.
"""

from inversion.layerwise.inverters import (
    BlockOptions,
    ComposedInverter,
    InverterStack,
    export_inverter,
    inverse_block,
    load_exported_inverter,
)
from inversion.layerwise.schedule import (
    METHODS,
    LossWeights,
    Method,
    Phase,
    Schedule,
    blockwise_loss,
    build_optimizers,
    naive_loss,
    phase_loss,
    relative_mse,
    resync_loss,
    set_lr,
    train_stack,
)

__all__ = [
    "BlockOptions",
    "ComposedInverter",
    "InverterStack",
    "LossWeights",
    "METHODS",
    "Method",
    "Phase",
    "Schedule",
    "blockwise_loss",
    "build_optimizers",
    "export_inverter",
    "inverse_block",
    "load_exported_inverter",
    "naive_loss",
    "phase_loss",
    "relative_mse",
    "resync_loss",
    "set_lr",
    "train_stack",
]
