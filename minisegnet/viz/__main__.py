"""``python -m minisegnet.viz docs/figures``: regenerate every figure the docs use."""
import sys

from .instances import save_instance_figures
from .panoptic import save_panoptic_figures
from .sampling import save_sampling_figures
from .teaching import save_teaching_figures


def main(argv=None):
    """``python -m minisegnet.viz docs/figures``: regenerate every figure the docs use."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m minisegnet.viz", description=main.__doc__)
    parser.add_argument("directory", help="where to write the PNG (and GIF) files, e.g. docs/figures")
    parser.add_argument("--no-gif", action="store_true", help="skip the animated GIF")
    args = parser.parse_args(argv)
    for path in save_teaching_figures(args.directory, gifs=not args.no_gif):
        print(path)
    for path in save_instance_figures(args.directory):
        print(path)
    for path in save_panoptic_figures(args.directory):
        print(path)
    for path in save_sampling_figures(args.directory):
        print(path)
    return 0


sys.exit(main())
