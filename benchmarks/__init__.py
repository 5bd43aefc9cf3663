"""Benchmarks of the embedded digits tables and of speed: run from the repository root.

One ``<family>_table`` module per family writes its README tables and figures
(``python -m benchmarks.update_readme <family>``, or ``python -m
benchmarks.<family>_table`` to print them); ``<family>_speed`` modules time the
LightningModules against bare PyTorch loops; ``fidelity_throughput`` times the FID/IS path
against torch-fidelity; ``timing`` holds the shared timing helpers.
"""
