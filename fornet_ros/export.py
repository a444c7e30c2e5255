"""ONNX export (dense-masked focus path; dynamic batch) with an onnxruntime parity check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import load_model


class _OnnxWrapper(nn.Module):
    def __init__(self, model, topk_ratio: float):
        super().__init__()
        self.model, self.topk_ratio = model, topk_ratio

    def forward(self, x):
        out = self.model(x, topk_ratio=self.topk_ratio, mode="dense")
        return out["logits"], out["importance"]


def export_onnx(checkpoint, onnx_path, size=None, topk_ratio=None, opset: int = 17, check: bool = True) -> dict:
    """Writes ``onnx_path``; input ``image`` (N, 3, H, W) normalised, outputs ``logits`` (N, C, H/8, W/8)
    and ``importance`` (N, 1, Hr, Wr). Returns the max |torch - onnxruntime| difference when checked.

    The dense path is exported because ONNX has no gather-by-region convolution; the number of
    selected regions is fixed by (H, W, K) at export time, the batch is dynamic."""
    model, meta = load_model(checkpoint)
    size = tuple(size or meta.input_size)
    K = model.cfg.topk_ratio if topk_ratio is None else float(topk_ratio)
    wrapper = _OnnxWrapper(model, K).eval()  # eval on the wrapper: export restores its mode recursively
    x = torch.randn(2, 3, *size)
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(wrapper, (x,), str(onnx_path), input_names=["image"], output_names=["logits", "importance"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "importance": {0: "batch"}},
                      opset_version=opset, dynamo=False)
    info = {"onnx": str(onnx_path), "size": list(size), "topk_ratio": K, "opset": opset}
    if check:
        import onnxruntime as ort
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        x3 = torch.randn(3, 3, *size)  # a batch size other than the traced one
        with torch.no_grad():
            ref = wrapper(x3)
        got = sess.run(None, {"image": x3.numpy()})
        info["max_abs_diff"] = float(max(np.abs(r.numpy() - g).max() for r, g in zip(ref, got)))
    return info
