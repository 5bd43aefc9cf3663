"""Sample a trained conditioned generator (see ``--help``).

The command line is ``model_inversion.generate`` (installed as ``inversion-generate``).
"""

from model_inversion.generate import main, run_from_command_line

__all__ = ["main", "run_from_command_line"]

if __name__ == "__main__":
    run_from_command_line()
