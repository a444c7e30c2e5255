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
    from .export import export_onnx
    ckpt = resolve_checkpoint(checkpoint)
    stem = f"{Path(ckpt).stem}.{content_hash(ckpt)}.{size[0]}x{size[1]}.k{topk:g}.{graph}"
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
            **kw):
    """The Segmenter of ``checkpoint`` on the fastest backend ``precision`` allows, measured here
    on one pre-processed frame at its input size, K and measured focus path: torch (BN folded),
    onnxruntime fp32, and onnxruntime int8 when ``precision`` is int8 (``calibration``: training
    frames, pre-processed). A K rule (adaptive K) and a GPU stay on torch: an ONNX graph fixes K,
    and the GPU path has its own (CUDA graphs, TensorRT). Says which in one ``log`` line
    (default: the ``fornet_ros`` logger)."""
    from .segmenter import Segmenter
    if log is None:
        import logging
        log = logging.getLogger("fornet_ros").warning
    if precision == "int8" and calibration is None:
        raise FornetError("precision int8 needs calibration frames (training images)")
    seg = Segmenter.from_checkpoint(checkpoint, backend="torch", device=device,
                                    precision="auto" if precision == "int8" else precision, **kw)
    if not isinstance(seg.topk_ratio, float) or seg.device.type != "cpu":
        seg.choice = f"backend: torch ({seg.provider}; an adaptive K or a GPU stays on torch)"
        log(seg.choice)
        return seg
    k, x = seg.topk_ratio, seg.preprocess([np.zeros((*seg.input_size, 3), np.uint8)])
    seg.warmup()
    graph = "dense" if seg.paths.resolve(k, "auto", 1) in ("dense", "none") else "sparse"
    times = {"torch": median_ms(lambda: seg.infer(x), runs)}
    cands = {"torch": seg}
    opts = [("onnxruntime fp32", None)] + ([("onnxruntime int8", calibration)] if precision == "int8" else [])
    for name, calib in opts:
        path = exported(checkpoint, seg.input_size, k, graph, calib)
        other = Segmenter.from_checkpoint(path, backend="onnxruntime", device="cpu",
                                          **{n: v for n, v in kw.items() if n != "topk_ratio"})
        cands[name], times[name] = other, median_ms(lambda o=other: o.infer(x), runs)
    best = min(times, key=times.get)
    cands[best].choice = (f"backend: {best} ({graph} focus path, K={k:g}, {seg.input_size[0]}x{seg.input_size[1]}): "
                          + ", ".join(f"{n} {t:.1f} ms" for n, t in sorted(times.items(), key=lambda i: i[1])))
    log(cands[best].choice)
    return cands[best]
