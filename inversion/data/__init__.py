"""Torch-only data helpers (the DataModules in ``datamodules/`` wrap these)."""
