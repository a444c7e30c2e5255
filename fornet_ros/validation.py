"""Argument checks shared by the ``fornet`` command line and the library (Segmenter, export, info).

Each ``check_*`` raises :class:`~fornet_ros.errors.FornetError` with a one-line message; the argparse
types below call the same functions, so ``fornet predict --topk nan`` and ``Segmenter(topk_ratio=nan)``
say the same thing. :func:`harden` gives every option of a parser a checked type: numbers must be
finite and inside the range :data:`RANGES` declares for their name, sizes (an ``H W`` pair) must fit
:data:`MAX_INPUT_PIXELS`, free text must be non-empty and one line. A number option whose name has no
declared range is still checked for finiteness; ``test/test_cli.py`` walks every parser and feeds each
option values outside its range.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from .errors import FornetError

MIN_SIDE = 8  # the smallest network input side (Segmenter, ModelMeta); some commands ask more at run time
MAX_INPUT_PIXELS = 4096 * 4096  # H x W of a network input / synthetic image: 16.8 MP (~0.2 GB as fp32 RGB)
MAX_SIDE = 16384
DEVICES = "auto, cpu, cuda, cuda:N"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
INF = math.inf
OPSETS = (13, 20)  # ONNX opsets export accepts: 20 is torch's TorchScript exporter's newest


def check_number(name: str, value, lo: float = -INF, hi: float = INF, lo_open: bool = False):
    """``value`` as given, when it is a finite number in [lo, hi] (``lo_open``: > lo)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FornetError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise FornetError(f"{name} must be a finite number, got {value!r}")
    if v < lo or v > hi or (lo_open and v == lo):
        low = [f"> {lo:g}" if lo_open else f">= {lo:g}"] if lo > -INF else []
        rule = (f"in [{lo:g}, {hi:g}]" if low and hi < INF and not lo_open
                else " and ".join(low + ([f"<= {hi:g}"] if hi < INF else [])))
        raise FornetError(f"{name} must be {rule}, got {value!r}")
    return value


def check_size(name: str, size, min_side: int = MIN_SIDE) -> tuple[int, int]:
    """(H, W) as ints: both sides in [min_side, MAX_SIDE] and H x W <= MAX_INPUT_PIXELS."""
    try:
        h, w = (int(v) for v in size)
        if (h, w) != tuple(size):
            raise ValueError
    except (TypeError, ValueError):
        raise FornetError(f"{name} must be two integers (H, W), got {size!r}") from None
    if min(h, w) < min_side or max(h, w) > MAX_SIDE:
        raise FornetError(f"{name} must be H W with both sides in [{min_side}, {MAX_SIDE}], got {h} {w}")
    if h * w > MAX_INPUT_PIXELS:
        raise FornetError(f"{name} {h}x{w} = {h * w} pixels exceeds the limit of {MAX_INPUT_PIXELS} "
                          f"(MAX_INPUT_PIXELS, 4096x4096)")
    return h, w


def check_topk(value, name: str = "topk_ratio"):
    """K: a finite ratio <= 1; None or negative means the model's own K (the caller resolves it)."""
    if value is None:
        return None
    check_number(name, value, hi=1.0)
    return value


def check_adaptive_k(threshold, k_min, k_max) -> tuple[float, float, float]:
    """The content-adaptive K rule's numbers: all finite, in [0, 1], k_min <= k_max."""
    for name, v in (("threshold", threshold), ("k_min", k_min), ("k_max", k_max)):
        check_number(f"adaptive K {name}", v, 0.0, 1.0)
    if k_min > k_max:
        raise FornetError(f"adaptive K needs k_min <= k_max, got k_min {k_min:g} > k_max {k_max:g}")
    return float(threshold), float(k_min), float(k_max)


def check_device(device: str) -> str:
    """The spelling of a device (availability is the runner's check)."""
    d = str(device)
    if d in ("auto", "cpu", "cuda") or (d.startswith("cuda:") and d[5:].isdigit()):
        return d
    raise FornetError(f"device must be one of {DEVICES}, got {device!r}")


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise FornetError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def check_output_dir(path) -> Path:
    """An output folder that exists or can be made: no file stands at its place or above it."""
    p = Path(path)
    for q in (p, *p.parents):
        if q.exists() and not q.is_dir():
            raise FornetError(f"cannot write to folder {p}: {q} is a file")
    return p


def check_output_file(path) -> Path:
    """An output file whose folder can be made, and which is not a folder itself."""
    p = Path(path)
    if p.is_dir():
        raise FornetError(f"cannot write {p}: it is a folder")
    check_output_dir(p.parent)
    return p


def file_problem(path, what: str = "file") -> str | None:
    """Why ``path`` cannot be read as a ``what`` (a checkpoint, an ONNX model): it does not exist, or
    it is a folder (naming the model files in it); None when it is a file."""
    p = Path(path)
    if p.is_dir():
        inside = sorted(q.name for q in p.iterdir() if q.suffix in (".pt", ".onnx"))
        hint = f" (in it: {', '.join(inside[:4])}{', ...' if len(inside) > 4 else ''})" if inside else ""
        return f"{what} {p} is a folder, not a file{hint}"
    return None if p.is_file() else f"{what} not found: {p}"


def check_onnx_model(path, packaged=()) -> None:
    """The onnxruntime backend runs a ``.onnx`` file. A PyTorch checkpoint (``.pt``; no path or a
    name in ``packaged``: the packaged model, a ``.pt`` too) is refused, saying how to export it."""
    if path is not None and str(path).endswith(".onnx"):
        return
    if path is None or str(path) == "" or (str(path) in packaged and not Path(path).exists()):
        name = "" if path is None or str(path) in ("", "default") else f" {path}"
        raise FornetError(f"the onnxruntime backend needs a .onnx model, and the packaged model{name} is a PyTorch "
                          f"checkpoint (.pt): export it with `fornet export{' --checkpoint' + name if name else ''} "
                          "--onnx model.onnx` and pass --checkpoint model.onnx (or use --backend torch)")
    onnx = Path(path).with_suffix(".onnx").name
    raise FornetError(f"the onnxruntime backend needs a .onnx model, not {path}: export it with `fornet export "
                      f"--checkpoint {path} --onnx {onnx}` and pass --checkpoint {onnx} (or use --backend torch)")


# -- argparse types --------------------------------------------------------------------------------
class Number:
    """argparse type: an int or float, finite, in [lo, hi] (``lo_open``: > lo)."""

    def __init__(self, kind=float, lo: float = -INF, hi: float = INF, lo_open: bool = False):
        self.kind, self.lo, self.hi, self.lo_open = kind, lo, hi, lo_open
        self.__name__ = kind.__name__  # argparse names the type in "invalid int value"

    def __call__(self, text: str):
        try:
            v = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a{'n' if self.kind is int else ''} {self.kind.__name__}: "
                                             f"{text!r}") from None
        try:
            return check_number("the value", v, self.lo, self.hi, self.lo_open)
        except FornetError as e:
            raise argparse.ArgumentTypeError(str(e)) from None


class Text:
    """argparse type: non-empty text on one line (a path, a name)."""

    __name__ = "text"

    def __call__(self, text: str) -> str:
        if not text.strip() or any(c in text for c in "\n\r\0"):
            raise argparse.ArgumentTypeError(f"expected a non-empty, one-line value, got {text!r}")
        return text


class Device(Text):
    __name__ = "device"

    def __call__(self, text: str) -> str:
        try:
            return check_device(super().__call__(text))
        except FornetError as e:
            raise argparse.ArgumentTypeError(str(e)) from None


class SizeAction(argparse.Action):
    """``--size H W``: checked as a pair (:func:`check_size`); ``append`` when the option repeats."""

    def __init__(self, *a, append: bool = False, min_side: int = MIN_SIDE, **kw):
        super().__init__(*a, **kw)
        self.append, self.min_side = append, min_side

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            size = check_size(option_string or self.dest, values, self.min_side)
        except FornetError as e:
            raise argparse.ArgumentError(self, str(e)) from None
        if self.append:
            size = [*(getattr(namespace, self.dest, None) or []), list(size)]
        setattr(namespace, self.dest, size)


K = dict(kind=float, hi=1.0)  # a ratio; negative: the model's K where the option says so
UNIT = dict(kind=float, lo=0.0, hi=1.0)
POS = dict(kind=float, lo=0.0, lo_open=True)
NONNEG = dict(kind=float, lo=0.0)
COUNT = dict(kind=int, lo=1)
INT0 = dict(kind=int, lo=0)
# option name -> range, for every number option of every sub-command (``command.name`` overrides)
RANGES = {
    "topk": K, "bench.topk": UNIT, "train.topk": UNIT, "init.topk": UNIT, "bench-node.topk": UNIT,
    "adaptive_k": UNIT, "alpha": UNIT, "k_min": UNIT, "k_max": UNIT,
    "rate": POS, "seconds": POS, "timeout": POS, "resolution": POS, "lr": POS, "scale": POS, "target_ms": POS,
    "soak": POS, "sample_s": POS, "load_step": POS, "weight_decay": NONNEG, "class_balance": NONNEG, "wait_for_subscribers": NONNEG,
    "runs": COUNT, "limit": COUNT, "threads": COUNT, "batch": COUNT, "batch_size": COUNT, "iters": COUNT,
    "eval_every": COUNT, "cameras": COUNT, "lidar_points": dict(kind=int, lo=1, hi=100_000_000), "frames": COUNT,
    "val_limit": COUNT, "grid": dict(kind=int, lo=1, hi=100_000), "region_px": dict(kind=int, lo=1, hi=1024),
    "num_classes": dict(kind=int, lo=1, hi=255), "opset": dict(kind=int, lo=OPSETS[0], hi=OPSETS[1]),
    "domain": dict(kind=int, lo=0, hi=232), "seed": dict(kind=int, lo=0, hi=2**32 - 1),
    "warmup": INT0, "workers": INT0, "load_procs": INT0, "boundary_px": dict(kind=int, lo=0, hi=1000),
}
SIZE_OPTIONS = {"size", "input_size", "image_size", "crop"}  # H W pairs
PRECISION_OPTIONS = {"precision"}


def _walk(parser, command: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _walk(sub, command)
        else:
            yield action


def harden(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """Give every option of ``parser`` (and its sub-parsers) a checked type: see the module doc."""
    for action in list(_walk(parser, command)):
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)) or action.nargs == 0:
            continue
        name = action.dest
        if name in SIZE_OPTIONS and action.nargs == 2 and type(action) in (argparse._StoreAction,
                                                                          argparse._AppendAction):
            was_append = isinstance(action, argparse._AppendAction)
            action.__class__ = SizeAction  # same fields as a store action; checks the pair as a whole
            action.append, action.min_side, action.type = was_append, MIN_SIDE, Number(int)
            continue
        if action.type in (int, float):
            spec = RANGES.get(f"{command}.{name}", RANGES.get(name, {}))
            action.type = Number(action.type, **{k: v for k, v in spec.items() if k != "kind"})
        elif name == "device" and action.type is None and action.choices is None:
            action.type = Device()
        elif name in PRECISION_OPTIONS and action.choices is None:
            action.choices = PRECISIONS
        elif action.type is None and action.choices is None:
            action.type = Text()
    return parser

