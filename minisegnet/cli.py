"""The ``minisegnet`` command: ``minisegnet --help``."""
import argparse
import sys

__all__ = ["main", "build_parser"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minisegnet",
        description="A from-scratch segmentation engine: train, evaluate, predict, and explore layer shapes.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_training_commands(commands)
    _add_shape_commands(commands)
    return parser


def _add_training_commands(commands):
    """train, evaluate, predict (see minisegnet/train.py)."""


def _add_shape_commands(commands):
    """shapes, summary (see minisegnet/shapes.py and minisegnet/summary.py)."""


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
