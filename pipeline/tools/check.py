"""Check a params file as every stage checks it before it starts, and nothing else.

    python -m pipeline.tools.check [--params params.yaml]   # or: kws check

Prints ``params.yaml: OK``, or one line naming the file, the key and the problem (exit 1): YAML
as DVC reads it (anchors, aliases and duplicate keys refused), no unknown section, every key of
every section, and the rules across sections. Run it after editing params.yaml by hand: DVC
itself parses the file before any stage runs (docs/params.md says what that leaves to DVC).
"""

from __future__ import annotations

import argparse

from pipeline.cli import parse_args, run_main
from pipeline.core import paths
from pipeline.sections import validate_file

DESCRIPTION = "Check params.yaml as every stage checks it before it starts."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=str(paths.PARAMS), help="the parameters file")


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    validate_file(args.params)
    print(f"{args.params}: OK")
    return 0


if __name__ == "__main__":
    run_main(main)
