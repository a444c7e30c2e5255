"""Backends that run the network for :class:`~fornet_ros.inference.Segmenter`: eager PyTorch, or
an exported ONNX model under ONNX Runtime. Both take a normalised float32 NCHW batch and return
numpy ``logits`` (N, C, h, w), ``importance`` and ``selected`` (N, 1, Hr, Wr).

ONNX Runtime execution providers are chosen the way ``device: auto`` chooses for torch: TensorRT,
then CUDA, then CPU — whichever the installed onnxruntime offers (``onnxruntime`` is CPU-only;
``onnxruntime-gpu`` adds CUDA and TensorRT). TensorRT runs in fp16 (``trt_fp16_enable``) with an
engine cache next to the model; the CUDA provider runs the fp32 graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .config import ModelConfig
from .errors import FornetError
from .validation import PRECISIONS, check_choice, check_device

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

    def __init__(self, model, device: str = "auto", precision: str = "auto", channels_last: bool = True):
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
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
        out = self.model(x.to(self.device, self.dtype), topk_ratio=topk_ratio, mode=mode)
        return tuple(out[k].float().cpu().numpy() for k in ("logits", "importance", "selected"))


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


class OrtRunner:
    backend = "onnxruntime"

    def __init__(self, path, device: str = "auto", precision: str = "auto", threads: int | None = None):
        import onnxruntime as ort
        from .export import read_onnx_metadata
        self.meta, extra = read_onnx_metadata(path)
        self.cfg = ModelConfig.from_dict(extra["model_config"])
        self.default_topk = extra["topk_ratio"]
        self.graph = extra["graph"]
        if precision not in ("auto", "fp32", "fp16"):
            raise FornetError(f"precision must be auto, fp32 or fp16 with onnxruntime, got {precision!r}")
        names = select_providers(ort.get_available_providers(), device)
        dev_id = int(device.split(":")[1]) if device.startswith("cuda:") else 0
        cache = str(Path(path).resolve().parent)
        options = {"TensorrtExecutionProvider": {"device_id": dev_id, "trt_fp16_enable": precision != "fp32",
                                                 "trt_engine_cache_enable": True, "trt_engine_cache_path": cache},
                   "CUDAExecutionProvider": {"device_id": dev_id}}
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), so, providers=[(n, options.get(n, {})) for n in names])
        self.provider = self.session.get_providers()[0]
        self.device = torch.device("cuda" if self.provider != "CPUExecutionProvider" else "cpu")
        self.dtype = torch.float32

    def __call__(self, batch: np.ndarray, topk_ratio: float, mode: str = "auto"):
        if abs(topk_ratio - self.default_topk) > 1e-9:
            raise FornetError(f"this ONNX model was exported with K = {self.default_topk:g}; re-export with "
                             f"`fornet export --topk {topk_ratio:g}` to run another K")
        return tuple(self.session.run(["logits", "importance", "selected"], {"image": np.ascontiguousarray(batch)}))
