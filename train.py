"""Train, validate, test or predict: ``python train.py fit --config FILE`` (see ``--help``).

The command line is ``model_inversion.train`` (installed as ``inversion-train``).
"""

from model_inversion.train import main, run_from_command_line

__all__ = ["main", "run_from_command_line"]

if __name__ == "__main__":
    run_from_command_line()
