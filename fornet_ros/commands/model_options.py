"""The options of every command that runs a model (``predict``, ``eval``, ``bag eval``): the run
options declared once in :data:`fornet_ros.config.RUN_OPTIONS` (the node's parameters read the same
table), plus the command line's own ``--checkpoint``, ``--topk``, ``--input-size``, ``--adaptive-k``."""

from __future__ import annotations

from ..config import RUN_OPTIONS
from ..inference import Segmenter
from ..model.focus import AdaptiveK
from ..validation import check_adaptive_k


def _run_option(p, name: str) -> None:
    """``--name`` from the table: its default, choices and description (the node's parameter text)."""
    o = RUN_OPTIONS[name]
    p.add_argument("--" + name.replace("_", "-"), default=o.default, choices=o.choices, help=o.description)


def add_model_arguments(p, checkpoint_help="checkpoint (.pt), exported model (.onnx), or another toolbox's .onnx with "
                                           "its description <stem>.yaml beside it (docs/deploy.md); default: the "
                                           "packaged default model (docs/model_card.md)"):
    """The command-line options of every command that runs a model (see :func:`segmenter_from_args`)."""
    p.add_argument("--checkpoint", default=None, help=checkpoint_help)
    for name in ("backend", "device", "precision"):
        _run_option(p, name)
    p.add_argument("--topk", type=float, default=None,
                   help="Top-K ratio of refined regions, in [0, 1]; default or any negative value: the model's own K")
    p.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="size the network sees (default: the model's); outputs keep the image size")
    p.add_argument("--adaptive-k", type=float, nargs=3, default=None, metavar=("THRESHOLD", "K_MIN", "K_MAX"),
                   help="content-adaptive K: refine regions with importance >= THRESHOLD, between K_MIN and K_MAX "
                        "of them (instead of --topk)")
    for name in ("resize_mode", "processing"):
        _run_option(p, name)
    p.add_argument("--no-cuda-graphs", action="store_true",
                   help=f"run the network eagerly; by default: {RUN_OPTIONS['cuda_graphs'].description}")


def segmenter_from_args(a) -> Segmenter:
    return Segmenter.from_checkpoint(a.checkpoint, backend=a.backend, device=a.device, precision=a.precision,
                                     input_size=a.input_size, resize_mode=a.resize_mode,
                                     processing=getattr(a, "processing", "auto"),
                                     cuda_graphs=not getattr(a, "no_cuda_graphs", False),
                                     topk_ratio=AdaptiveK(*check_adaptive_k(*a.adaptive_k)) if a.adaptive_k else a.topk)
