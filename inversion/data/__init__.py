"""Torch-only data helpers (the DataModules in ``model_inversion/datamodules/`` wrap these)."""
