"""Score produced images or a trained run (see ``--help``).

The command line is ``model_inversion.evaluate`` (installed as ``inversion-evaluate``).
"""

from model_inversion.evaluate import main, run_from_command_line

__all__ = ["main", "run_from_command_line"]

if __name__ == "__main__":
    run_from_command_line()
