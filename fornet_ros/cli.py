"""The ``fornet`` command. This module owns the sub-commands: :data:`COMMANDS` names, for each one, the
function that adds its options and the one that runs it, where they live beside its feature. They are
imported only when that command runs, so that ``fornet --help`` stays instant; ``test_cli.py`` resolves
every entry, so a renamed function fails the tests, not a user. User errors
(:class:`~fornet_ros.errors.FornetError`, a missing file) are caught here, once: one line on stderr,
exit code 2. Anything else is a bug and traces.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A sub-command: ``add`` and ``run`` are ``"module:function"`` references (the entry-point syntax,
    resolved by :class:`importlib.metadata.EntryPoint` when the command runs)."""

    add: str
    run: str
    help: str

    def resolve(self) -> tuple[callable, callable]:
        """(add_arguments(parser), run(args)); ImportError / AttributeError if either has moved."""
        from importlib.metadata import EntryPoint  # here: ~50 ms that `fornet --help` does not need
        return tuple(EntryPoint(name="", value=ref, group="fornet").load() for ref in (self.add, self.run))


def _cmd(module: str, add: str, run: str, help_: str) -> Command:
    return Command(f"{module}:{add}", f"{module}:{run}", help_)


_INFO, _BENCH, _CMD = "fornet_ros.commands.model_info", "fornet_ros.tools.bench", "fornet_ros.commands"
COMMANDS: dict[str, Command] = {
    "init": _cmd(_INFO, "add_init_arguments", "run_init", "write a checkpoint with untrained weights"),
    "info": _cmd(_INFO, "add_info_arguments", "run_info", "variant, parameters, GFLOPs of a checkpoint or variant"),
    "predict": _cmd(f"{_CMD}.predict", "add_arguments", "run",
                    "segment images: label PNG, colour overlay, importance heat-map"),
    "eval": _cmd(f"{_CMD}.evaluate", "add_arguments", "run",
                 "score a model on a dataset split (JSON with --json)"),
    "train": _cmd("fornet_ros.training.train", "add_arguments", "run",
                  "train FoR-Net or a baseline (AdamW, poly LR, OHEM; torchrun for DDP)"),
    "export": _cmd(f"{_CMD}.export", "add_arguments", "run",
                   "export to ONNX (sparse graph, metadata inside) and check it in onnxruntime"),
    "bench": _cmd(_BENCH, "add_bench_arguments", "run_bench", "network latency vs K, sparse vs dense, baselines, one run"),
    "bench-segmenter": _cmd(_BENCH, "add_segmenter_arguments", "run_segmenter",
                            "the inference API end to end on one image"),
    "bench-costmap": _cmd("fornet_ros.tools.bench_mapping", "add_costmap_arguments", "run_costmap",
                          "ground projection time per frame and lookup build time"),
    "bench-points": _cmd("fornet_ros.tools.bench_mapping", "add_points_arguments", "run_points",
                         "depth fusion and LiDAR labelling time per frame"),
    "bench-node": _cmd(f"{_CMD}.bench_node", "add_arguments", "run",
                       "node end-to-end latency vs the model alone; overload"),
    "bag": _cmd(f"{_CMD}.bag", "add_arguments", "run", "rosbag2: from-cityscapes, from-folder, play, eval, export, info"),
    "demo": _cmd(f"{_CMD}.demo", "add_arguments", "run", "the whole pipeline through DDS with a report (index.html)"),
    "synth": _cmd(f"{_CMD}.synth", "add_arguments", "run",
                  "write procedural Cityscapes-format scenes (exact labels, camera JSON)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``fornet CMD: error: ...``) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(name: str) -> tuple[argparse.ArgumentParser, callable]:
    command = COMMANDS[name]
    add, run = command.resolve()
    parser = _Parser(prog=f"fornet {name}", description=command.help)
    add(parser)
    from .validation import harden
    return harden(parser, name), run


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _Parser(prog="fornet", description="FoR-Net semantic segmentation tools ('fornet COMMAND --help').")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in COMMANDS:
        top.error(f"unknown command {name!r}; choose one of {', '.join(COMMANDS)}")
    parser, run = build_parser(name)
    args = parser.parse_args(argv[1:])
    from .errors import FornetError
    try:
        run(args)
    except (FornetError, OSError) as e:
        if isinstance(e, OSError) and e.strerror:  # "[Errno 17] File exists: 'x'" -> "x: file exists"
            e = f"{e.filename}: {e.strerror.lower()}" if e.filename else e.strerror
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"fornet {name}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
