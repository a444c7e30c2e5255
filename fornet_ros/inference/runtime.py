"""Backends that run the network for :class:`~fornet_ros.inference.Segmenter`: eager PyTorch, or
an ONNX model under ONNX Runtime. Both take a normalised float32 NCHW RGB batch and return numpy
``logits`` (N, C, h, w), ``importance`` and ``selected`` (N, 1, Hr, Wr). A foreign ONNX model
(another toolbox's export, described by a YAML beside it) returns None for the two maps, and its
``labels`` (N, h, w) uint8 in place of the logits when its graph ends in an arg-max.

ONNX Runtime execution providers are chosen the way ``device: auto`` chooses for torch: TensorRT,
then CUDA, then CPU — whichever the installed onnxruntime offers (``onnxruntime`` is CPU-only;
``onnxruntime-gpu`` adds CUDA and TensorRT). TensorRT runs in fp16 (``trt_fp16_enable``) with an
engine cache next to the model; the CUDA provider runs the fp32 graph.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..config import ModelConfig
from ..errors import FornetError
from ..validation import PRECISIONS, check_choice, check_device, check_size
from .model_description import ForeignConfig, output_problem, to_network_output

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def resolve_device(device: str = "auto") -> torch.device:
    check_device(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FornetError(f"device {device!r} requested but CUDA is not available (torch {torch.__version__} "
                          f"{'was built without CUDA' if torch.version.cuda is None else 'finds no GPU'})")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    check_choice("precision", precision, PRECISIONS)
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if table[precision] is torch.float16 and device.type != "cuda":
        raise FornetError("fp16 inference needs a CUDA device; use fp32 (or bf16) on the CPU")
    return table[precision]


class TorchRunner:
    backend = "torch"

    def __init__(self, model, device: str = "auto", precision: str = "auto", channels_last: bool = True,
                 fold_bn: bool = True):
        """``fold_bn``: run a copy of ``model`` with every conv + BatchNorm pair folded into one conv
        (:func:`~fornet_ros.inference.backends.fold_batchnorm`); ``model`` itself is left as it is."""
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        if fold_bn:
            import copy
            from .backends import fold_batchnorm
            model = copy.deepcopy(model).eval()
            fold_batchnorm(model)
        self.model = model.eval().to(self.device, self.dtype)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.cfg: ModelConfig = model.cfg
        self.default_topk = model.cfg.topk_ratio
        self.provider = str(self.device)

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray, topk_ratio: float, mode: str = "auto"):
        x = torch.from_numpy(batch)
        x = x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
        out = self.run_tensor(x.to(self.device, self.dtype), topk_ratio, mode)
        return tuple(o.float().cpu().numpy() for o in out)

    def run_tensor(self, x: torch.Tensor, topk_ratio, mode: str = "auto") -> tuple:
        """The network on a batch already on the device: (logits, importance, selected) tensors there."""
        out = self.model(x, topk_ratio=topk_ratio, mode=mode)
        return tuple(out[k] for k in ("logits", "importance", "selected"))


def select_providers(available, device: str = "auto") -> list[str]:
    """Execution providers in preference order for ``device`` (auto, cpu, cuda[:N])."""
    check_device(device)
    if device == "cpu":
        wanted = ["CPUExecutionProvider"]
    elif device == "auto" or device.startswith("cuda"):
        wanted = [p for p in PROVIDER_ORDER if p in available]
        if device.startswith("cuda") and not any(p in wanted for p in PROVIDER_ORDER[:2]):
            raise FornetError(f"device {device!r} requested but this onnxruntime offers only {list(available)} "
                              "(install onnxruntime-gpu)")
    return wanted


def tensorrt_options(path, device_id: int, fp16: bool, input_size, max_batch: int | None = None) -> dict:
    """TensorRT execution provider options: engines cached next to the model (``fornet export
    --tensorrt`` builds them ahead with these same options, so the runner finds them), and, when
    the export fixed a largest batch, one optimisation profile for batches 1..max_batch."""
    opts = {"device_id": device_id, "trt_fp16_enable": fp16, "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(Path(path).resolve().parent)}
    if max_batch:
        h, w = input_size
        opts.update(trt_profile_min_shapes=f"image:1x3x{h}x{w}", trt_profile_opt_shapes=f"image:1x3x{h}x{w}",
                    trt_profile_max_shapes=f"image:{max_batch}x3x{h}x{w}")
    return opts


def _ort_message(error: Exception) -> str:
    """onnxruntime's error text on one line, without its prefix and the source location of the kernel."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : (Non-zero status code returned while running )?", "", text)
    return re.sub(r"\S*onnxruntime_src/\S+ [^(]*\([^)]*\) ", "", text)[:300]


def session_options(threads: int):
    """ONNX Runtime session options for every session this package runs (the runner, the benchmark):
    ``threads`` intra-op threads, all graph optimisations (conv+BN+activation fusion), and threads that
    spin while a run lasts but stop when it returns, instead of spinning on and holding the cores the
    pre/post-processing and the node's other threads need (docs/benchmarks.md)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.force_spinning_stop", "1")
    return so


class OrtRunner:
    """An ONNX model under ONNX Runtime: a FoR-Net export (metadata inside), or a foreign
    segmentation model with a description file beside it (:mod:`fornet_ros.inference.model_description`),
    fed in its own channel order and layout; a foreign model has no importance or selected maps
    (None), and one whose output is ``labels`` returns them in place of the logits."""

    backend = "onnxruntime"
    any_input_size = False  # True: a foreign graph with dynamic H, W (any input_size runs)

    def __init__(self, path, device: str = "auto", precision: str = "auto", threads: int | None = None,
                 input_size: tuple[int, int] | None = None):
        """``input_size``: the size the caller will run a foreign graph with dynamic H, W at (default:
        its description's); the first run at load uses it."""
        import onnxruntime as ort
        from .export import ONNX_FORMAT, onnx_properties, read_onnx_metadata
        if precision not in ("auto", "fp32", "fp16"):
            raise FornetError(f"precision must be auto, fp32 or fp16 with onnxruntime, got {precision!r}")
        foreign = onnx_properties(path).get("fornet_format") != ONNX_FORMAT
        if foreign:
            from .model_description import read_description
            desc = read_description(path)
            self.meta, self.io = desc.meta, desc.io
            self.cfg = ForeignConfig(desc.name, len(desc.meta.classes))
            self.default_topk, self.graph = 1.0, "foreign"
            extra = {}
        else:
            self.meta, extra = read_onnx_metadata(path)
            self.io = None
            self.cfg = ModelConfig.from_dict(extra["model_config"])
            self.default_topk = extra["topk_ratio"]
            self.graph = extra["graph"]
        names = select_providers(ort.get_available_providers(), device)
        dev_id = int(device.split(":")[1]) if device.startswith("cuda:") else 0
        trt = tensorrt_options(path, dev_id, precision != "fp32", self.meta.input_size, extra.get("trt_max_batch"))
        options = {"TensorrtExecutionProvider": trt,
                   "CUDAExecutionProvider": {"device_id": dev_id}}
        so = session_options(threads or torch.get_num_threads())
        try:
            self.session = ort.InferenceSession(str(path), so, providers=[(n, options.get(n, {})) for n in names])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for invalid graphs
            from .checkpoint import CheckpointError
            raise CheckpointError(f"onnxruntime cannot load {path}: {' '.join(str(e).split())[:300]}") from e
        if foreign:
            desc_size = desc.meta.input_size if desc.input_size_given else None
            self._bind_foreign(path, desc_size, input_size)
        self.provider = self.session.get_providers()[0]
        self.device = torch.device("cuda" if self.provider != "CPUExecutionProvider" else "cpu")
        self.dtype = torch.float32

    @property
    def output(self) -> str:
        """What the graph answers: logits (N, C, h, w) or labels (N, h, w)."""
        return "labels" if self.io is not None and self.io.output == "labels" else "logits"

    def _bind_foreign(self, path, desc_size, run_size=None) -> None:
        """Check the graph against its description (input and output names, ranks, channels, the
        class count, the input size) and settle the input size; CheckpointError saying what differs."""
        from dataclasses import replace
        from .checkpoint import CheckpointError
        io, n_cls = self.io, len(self.meta.classes)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        where = f"{path} (model description {Path(path).with_suffix('.yaml')})"
        if io.input_name is None and len(inputs) != 1:
            raise CheckpointError(f"{where}: the graph has inputs {[i.name for i in inputs]}: set input_name")
        inp = next((i for i in inputs if io.input_name in (None, i.name)), None)
        out = next((o for o in outputs if io.output_name in (None, o.name)), None)
        if inp is None or out is None:
            missing = ("input", io.input_name, [i.name for i in inputs]) if inp is None else \
                ("output", io.output_name, [o.name for o in outputs])
            raise CheckpointError(f"{where}: no {missing[0]} named {missing[1]!r}; the graph has {missing[2]}")
        if inp.type not in ("tensor(float)", "tensor(float16)"):
            raise CheckpointError(f"{where}: input {inp.name!r} is {inp.type}; float or float16 images are supported")
        if len(inp.shape) != 4:
            raise CheckpointError(f"{where}: input {inp.name!r} has shape {inp.shape}; expected 4-D ({io.input_layout})")
        hwc = (1, 2, 3) if io.input_layout == "nhwc" else (2, 3, 1)
        h, w, c = (inp.shape[k] for k in hwc)
        if isinstance(c, int) and c != 3:
            raise CheckpointError(f"{where}: input {inp.name!r} {list(inp.shape)} has {c} channels where "
                                  f"input_layout {io.input_layout} puts them; expected 3 (check input_layout)")
        fixed = (h, w) if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0 else None
        if fixed and desc_size and tuple(desc_size) != fixed:
            raise CheckpointError(f"{where}: input_size {list(desc_size)} but the graph's input is {list(fixed)}")
        if not fixed and not desc_size:
            raise CheckpointError(f"{where}: the graph's input H, W are not fixed ({inp.shape}): set input_size")
        self.meta = replace(self.meta, input_size=tuple(fixed or desc_size))
        self.any_input_size = fixed is None  # a dynamic graph runs at any input_size the user picks
        self._names = inp.name, out.name
        self._in_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        import onnxruntime as ort
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = 4  # a failed run raises (one line below), no log lines besides
        shape = out.shape
        run_size = check_size("input_size", run_size) if run_size is not None and not fixed else self.meta.input_size
        if output_problem(io, shape, n_cls) is None:  # a first run now: a graph that cannot take the input size
            try:  # fails at load, in one line, and a dynamic channel count is checked too
                shape = list(self._run_session(np.zeros((1, 3, *run_size), np.float32)).shape)
            except FornetError as e:
                raise CheckpointError(f"{where}: {e}") from None
        if (problem := output_problem(io, shape, n_cls)) is not None:
            raise CheckpointError(f"{where}: output {out.name!r} {problem}")

    def _run_session(self, batch: np.ndarray) -> np.ndarray:
        """The foreign graph's raw output for a normalised RGB NCHW batch; FornetError if it fails."""
        io = self.io
        x = batch[:, ::-1] if io.channel_order == "bgr" else batch  # batch: RGB NCHW, normalised
        if io.input_layout == "nhwc":
            x = x.transpose(0, 2, 3, 1)
        try:
            (y,) = self.session.run([self._names[1]], {self._names[0]: np.ascontiguousarray(x, self._in_dtype)},
                                    self._run_options)
        except Exception as e:  # noqa: BLE001 - onnxruntime's own types; typically a shape the graph cannot take
            h, w = batch.shape[2:]
            raise FornetError(f"the graph rejected input size {h}x{w} (H x W: the description's input_size or the "
                              f"one asked for; many networks need multiples of their stride, e.g. 32): "
                              f"{_ort_message(e)}") from None
        return y

    def _run_foreign(self, batch: np.ndarray):
        return to_network_output(self._run_session(batch), self.io, len(self.meta.classes)), None, None

    def __call__(self, batch: np.ndarray, topk_ratio: float, mode: str = "auto"):
        if self.io is not None:
            return self._run_foreign(batch)
        if abs(topk_ratio - self.default_topk) > 1e-9:
            raise FornetError(f"this ONNX model was exported with K = {self.default_topk:g}; re-export with "
                             f"`fornet export --topk {topk_ratio:g}` to run another K")
        return tuple(self.session.run(["logits", "importance", "selected"], {"image": np.ascontiguousarray(batch)}))
