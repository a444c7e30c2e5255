"""The ``fornet`` command. This module owns the sub-commands; each one's options and action live
with its feature (``add_arguments(parser)`` / ``run(args)``, or ``add_<name>_arguments`` /
``run_<name>`` where a module serves several), imported only when that command runs so that
``fornet --help`` stays instant. User errors (:class:`~fornet_ros.errors.FornetError`, a missing
file) are caught here, once: one line on stderr, exit code 2. Anything else is a bug and traces.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command: (module, function suffix ("" = add_arguments/run), one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("fornet_ros.tools.model_info", "init", "write a checkpoint with untrained weights"),
    "info": ("fornet_ros.tools.model_info", "info", "variant, parameters, GFLOPs of a checkpoint or variant"),
    "predict": ("fornet_ros.tools.predict", "", "segment images: label PNG, colour overlay, importance heat-map"),
    "eval": ("fornet_ros.training.evaluation", "", "score a model on a dataset split (JSON with --json)"),
    "train": ("fornet_ros.training.train", "", "train FoR-Net or a baseline (AdamW, poly LR, OHEM; torchrun for DDP)"),
    "export": ("fornet_ros.inference.export", "", "export to ONNX (sparse graph, metadata inside) and check it in onnxruntime"),
    "bench": ("fornet_ros.tools.bench", "bench", "network latency vs K, sparse vs dense, baselines, one run"),
    "bench-segmenter": ("fornet_ros.tools.bench", "segmenter", "the inference API end to end on one image"),
    "bench-costmap": ("fornet_ros.tools.bench_mapping", "costmap", "ground projection time per frame and lookup build time"),
    "bench-points": ("fornet_ros.tools.bench_mapping", "points", "depth fusion and LiDAR labelling time per frame"),
    "bench-node": ("fornet_ros.ros.tools_cli", "bench_node", "node end-to-end latency vs the model alone; overload"),
    "bag": ("fornet_ros.ros.tools_cli", "bag", "rosbag2: from-cityscapes, from-folder, play, eval, info"),
    "demo": ("fornet_ros.ros.tools_cli", "demo", "the whole pipeline through DDS with a report (index.html)"),
    "synth": ("fornet_ros.tools.synthetic", "", "write procedural Cityscapes-format scenes (exact labels, camera JSON)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``fornet CMD: error: ...``) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(name: str) -> tuple[argparse.ArgumentParser, callable]:
    module, suffix, help_ = COMMANDS[name]
    mod = importlib.import_module(module)
    add = getattr(mod, f"add_{suffix}_arguments" if suffix else "add_arguments")
    run = getattr(mod, f"run_{suffix}" if suffix else "run")
    parser = _Parser(prog=f"fornet {name}", description=help_)
    add(parser)
    from .validation import harden
    return harden(parser, name), run


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _Parser(prog="fornet", description="FoR-Net semantic segmentation tools ('fornet COMMAND --help').")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, _, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
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
