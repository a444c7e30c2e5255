"""The ``fornet`` command: init, info, predict, bench, export, train, eval (``fornet SUB --help``)."""

from __future__ import annotations

import argparse
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    from . import commands

    parser = argparse.ArgumentParser(prog="fornet", description="FoR-Net semantic segmentation tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, _) in commands.COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in commands.COMMANDS:
        parser.error(f"unknown command {name!r}; choose one of {', '.join(commands.COMMANDS)}")
    return commands.COMMANDS[name][1](rest) or 0


if __name__ == "__main__":
    sys.exit(main())
