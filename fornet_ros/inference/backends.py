"""The fastest measured way to run a checkpoint on this machine, with the well-kept tools for it.

- :func:`fold_batchnorm`: inference-time conv + BatchNorm folding
  (``torch.nn.utils.fusion.fuse_conv_bn_eval``) for the torch backend: one conv instead of a conv
  and a normalisation pass per layer, same numbers to float rounding.
- :func:`exported`: a ``.pt`` exported to ONNX for one input size, K and focus path, cached by the
  checkpoint's content hash beside it (or in the user cache dir when that folder is read-only),
  so configure exports once per machine; ONNX Runtime then runs it with its graph optimisations
  (conv + BN + activation fusion, constant folding: ``ORT_ENABLE_ALL``).
- :func:`quantize_int8`: ONNX Runtime's static int8 quantization (QDQ, per-channel weights,
  activations calibrated on training frames) of such an export.
- :func:`fastest`: times the candidates the user's precision allows (torch; onnxruntime fp32;
  onnxruntime int8 when ``precision="int8"``) on the Segmenter's own input and keeps the fastest.
  When ONNX Runtime wins, the Segmenter stays a torch one whose runner is a :class:`HybridRunner`:
  the ONNX graph runs the K and focus path it was exported for, torch every other K (a run-time K
  change, the latency controller, adaptive K), so picking the fast runtime costs no feature.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import FornetError
from .path_choice import median_ms


class HybridRunner:
    """The torch runner of a ``.pt`` with an ONNX Runtime session for the one K (and focus path) that
    session was exported with (:func:`fastest` measured it faster). Calls at that K go to ONNX
    Runtime, every other call to torch; ``last`` says which ran the last call. It presents the
    torch runner's face (``backend`` torch, its model and config), so everything that needs a movable
    K keeps working; the focus paths' cost table is still torch's (conservative at the exported K).
    Written here because neither runtime switches between the two for us."""

    backend = "torch"

    def __init__(self, torch_runner, fast):
        self.torch, self.fast = torch_runner, fast
        self.last = None  # "onnxruntime" or "torch": the runtime of the last call

    model = property(lambda self: self.torch.model)
    cfg = property(lambda self: self.torch.cfg)
    device = property(lambda self: self.torch.device)
    dtype = property(lambda self: self.torch.dtype)
    channels_last = property(lambda self: self.torch.channels_last)
    default_topk = property(lambda self: self.torch.default_topk)

    @property
    def provider(self) -> str:
        return (f"{self.fast.provider} at K={self.fast.default_topk:g} ({self.fast.graph}), "
                f"torch {self.torch.provider} otherwise")

    def takes(self, topk_ratio) -> bool:
        """Whether the ONNX graph runs a call at this K: a float K equal to its own. Routed on K alone: the
        sparse and dense paths compute the same network (to float rounding), so the graph's own path
        serves a call at its K whichever path the torch side's chooser named for it (the chooser is
        measured per camera count and may name the other one); ``paths.last`` then says the graph's."""
        return isinstance(topk_ratio, float | int) and abs(topk_ratio - self.fast.default_topk) < 1e-9

    @property
    def ran_graph(self) -> str | None:
        """The focus path the ONNX graph ran when it took the last call (its exported one), else None:
        torch's call ran the path the Segmenter's chooser named."""
        return self.fast.graph if self.last == "onnxruntime" else None

    def __call__(self, batch: np.ndarray, topk_ratio, mode: str = "auto"):
        if self.takes(topk_ratio):
            self.last = "onnxruntime"
            return self.fast(batch, topk_ratio, mode)
        self.last = "torch"
        return self.torch(batch, topk_ratio, mode)

    def run_tensor(self, x: torch.Tensor, topk_ratio, mode: str = "auto") -> tuple:
        """Device tensors in and out (torch processing): torch's alone."""
        self.last = "torch"
        return self.torch.run_tensor(x, topk_ratio, mode)


# Torch's network time inside the node process over its time alone, on the 2-core CPU (docs/benchmarks.md,
# "the node's default backend"): 1.21-1.24x at 384x768 and 1.72-1.79x at 360x480 in bench-node's runs,
# where ONNX Runtime's was 0.92-1.03x; 1.24-1.27x at 448x896 with the package's libgomp spin count
# (session 6, docs/bench/speed_r4f/node_720x1280_5hz_torch.json). The node's `backend: fastest` weighs torch's time by the smallest
# of these, so a torch that wins alone by less than that does not lose inside the node.
NODE_TORCH_FACTOR = 1.2


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d inside an ``nn.Sequential`` (the
    ConvBNReLU blocks, torchvision's Conv2dNormActivation) into the conv, in place, for an eval
    model; returns how many were folded."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    if model.training:
        raise ValueError("fold_batchnorm needs an eval() model (folding uses the running statistics)")
    n = 0
    for mod in model.modules():
        if not isinstance(mod, nn.Sequential):
            continue
        names = list(mod._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = mod._modules[a], mod._modules[b]
            if isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d:
                mod._modules[a], mod._modules[b] = fuse_conv_bn_eval(conv, bn), nn.Identity()
                n += 1
    return n


def content_hash(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def cache_dir(checkpoint) -> Path:
    """Beside the checkpoint when that folder is writable, else ``$XDG_CACHE_HOME/fornet_ros``."""
    here = Path(checkpoint).resolve().parent
    if os.access(here, os.W_OK):
        return here
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fornet_ros"
    user.mkdir(parents=True, exist_ok=True)
    return user


def exported(checkpoint, size, topk: float, graph: str, calibration=None) -> Path:
    """The ONNX export of ``checkpoint`` for input ``size``, K ``topk`` and focus ``graph``
    (sparse|dense), int8 when ``calibration`` (a float32 NCHW batch of pre-processed training
    frames) is given; made at the first call, then read from the cache."""
    from .checkpoint import resolve_checkpoint
    from .export import EXPORT_REVISION, export_onnx
    ckpt = resolve_checkpoint(checkpoint)
    stem = f"{Path(ckpt).stem}.{content_hash(ckpt)}.{size[0]}x{size[1]}.k{topk:g}.{graph}.r{EXPORT_REVISION}"
    fp32 = cache_dir(ckpt) / f"{stem}.onnx"
    if not fp32.exists():
        tmp = fp32.with_suffix(f".{os.getpid()}.onnx")
        export_onnx(ckpt, tmp, size=size, topk_ratio=topk, dense=graph == "dense", check=False)
        tmp.replace(fp32)  # atomic: a second process never reads a half-written file
    if calibration is None:
        return fp32
    int8 = fp32.with_name(f"{stem}.int8.onnx")
    if not int8.exists():
        tmp = int8.with_suffix(f".{os.getpid()}.onnx")
        quantize_int8(fp32, tmp, calibration)
        tmp.replace(int8)
    return int8


def quantize_int8(fp32_path, out_path, calibration: np.ndarray) -> Path:
    """Static int8 quantization by ONNX Runtime (QDQ format, per-channel int8 weights, uint8
    activations with MinMax ranges from ``calibration``, one frame at a time); the FoR-Net
    metadata is carried over so the file runs on its own."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calibration)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"image": np.ascontiguousarray(x[None], np.float32)}

    if calibration.ndim != 4 or len(calibration) == 0:
        raise FornetError(f"int8 calibration needs a batch of pre-processed frames (N, 3, H, W), got {calibration.shape}")
    pre = Path(out_path).with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out_path), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        pre.unlink(missing_ok=True)
    src, dst = onnx.load(str(fp32_path)), onnx.load(str(out_path))
    del dst.metadata_props[:]
    for p in src.metadata_props:
        dst.metadata_props.add(key=p.key, value=p.value)
    onnx.save(dst, str(out_path))
    return Path(out_path)


def fastest(checkpoint, device: str = "auto", precision: str = "auto", calibration=None, runs: int = 5, log=None,
            torch_factor: float = 1.0, **kw):
    """The Segmenter of ``checkpoint`` on the fastest backend ``precision`` allows, measured here
    on one pre-processed frame at its input size and K: torch (BN folded, on the focus path its
    measured table names), onnxruntime fp32, and onnxruntime int8 when ``precision`` is int8
    (``calibration``: training frames, pre-processed), each ONNX graph on both focus paths where
    0 < K < 1. When an ONNX Runtime candidate wins, the torch Segmenter is returned
    with a :class:`HybridRunner` (that session at this K and path, torch for any other K). A K rule
    (adaptive K) and a GPU stay on torch: an ONNX graph fixes K, and the GPU path has its own
    (CUDA graphs, TensorRT). Says which in one ``log`` line (default: the ``fornet_ros`` logger).
    ``torch_factor``: how much slower torch runs where the Segmenter will run than here, alone; the
    choice compares torch's time times this (the node passes its measured factor, :data:`NODE_TORCH_FACTOR`)."""
    from .segmenter import Segmenter
    if log is None:
        import logging
        log = logging.getLogger("fornet_ros").warning
    if precision == "int8" and calibration is None:
        raise FornetError("precision int8 needs calibration frames (training images)")
    seg = Segmenter.from_checkpoint(checkpoint, backend="torch", device=device,
                                    precision="auto" if precision == "int8" else precision, **kw)
    stay = ("an adaptive K stays on torch" if not isinstance(seg.topk_ratio, float) else
            "a GPU stays on torch (CUDA graphs, TensorRT)" if seg.device.type != "cpu" else
            "processing torch stays on torch" if seg.processing == "torch" else
            f"{precision} stays on torch (ONNX Runtime runs fp32)" if precision not in ("auto", "fp32", "int8") else None)
    if stay is None:
        try:
            import onnxruntime  # noqa: F401 - an optional dependency (setup.py extra "export")
        except ImportError:
            stay = "onnxruntime is not installed"
    if stay:
        seg.choice = f"backend: torch ({seg.provider}; {stay})"
        log(seg.choice)
        return seg
    k, x = seg.topk_ratio, seg.preprocess([np.zeros((*seg.input_size, 3), np.uint8)])
    seg.warmup()
    graph = "dense" if seg.paths.resolve(k, "auto", 1) in ("dense", "none") else "sparse"
    # ONNX Runtime's two focus paths cost otherwise than torch's (its region gathers are dearer: at
    # K = 0.5 its sparse graph ran 1.13x its dense one where torch's table named sparse,
    # docs/benchmarks.md), so where K leaves a choice both graphs are timed
    cfg = seg.runner.cfg
    two = 0 < k < 1 and cfg.focus and getattr(cfg, "head", "sparse") == "sparse"  # the paper head has one graph
    graphs = [graph, "dense" if graph == "sparse" else "sparse"] if two else [graph]
    times = {"torch": median_ms(lambda: seg.infer(x), runs)}
    cands, paths, failed = {"torch": seg}, {"torch": graph}, []
    opts = [("onnxruntime fp32", None)] + ([("onnxruntime int8", calibration)] if precision == "int8" else [])
    for (name, calib), g in [(o, g) for o in opts for g in graphs]:
        label = name if len(graphs) == 1 else f"{name} {g}"
        try:  # an export or a session that fails leaves torch running, said in the log line
            path = exported(checkpoint, seg.input_size, k, g, calib)
            other = Segmenter.from_checkpoint(path, backend="onnxruntime", device="cpu",
                                              **{n: v for n, v in kw.items() if n != "topk_ratio"})
            # the path the graph was written with (the paper head's is dense whatever was asked)
            cands[label], paths[label] = other, other.runner.graph
            times[label] = median_ms(lambda o=other: o.infer(x), runs)
        except Exception as e:  # noqa: BLE001 - torch.onnx and onnxruntime raise many types
            failed.append(f"{label} failed: {type(e).__name__}: {' '.join(str(e).split())[:160]}")
    best = min(times, key=lambda n: times[n] * (torch_factor if n == "torch" else 1.0))
    if best != "torch":  # the fast session at K, torch for any other K: still a torch Segmenter
        seg.runner = HybridRunner(seg.runner, cands[best].runner)
    seg.choice = (f"backend: {best} ({paths[best]} focus path, K={k:g}, {seg.input_size[0]}x{seg.input_size[1]}"
                  + ("" if best == "torch" else "; torch for any other K") + "): "
                  + ", ".join([f"{n} {t:.1f} ms" + (f" (x{torch_factor:g} where it runs)" if n == "torch" and
                                                         torch_factor != 1 else "")
                               for n, t in sorted(times.items(), key=lambda i: i[1])] + failed))
    log(seg.choice)
    return seg
