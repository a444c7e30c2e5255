"""``fornet export``: a checkpoint to ONNX (:func:`fornet_ros.inference.export.export_onnx`), and
optionally its TensorRT engine."""

from __future__ import annotations

import json

from ..errors import FornetError
from ..inference.export import build_tensorrt_engine, check_tensorrt_available, export_onnx


def add_arguments(p):
    p.description = ("Export to ONNX (dynamic batch; H, W and K fixed at export) with the model's metadata inside, "
                     "so the .onnx alone runs the node. Default: the sparse graph (TopK, region gather, branches on "
                     "the K regions, ScatterND): compute stays proportional to K. Outputs: logits, importance, selected.")
    p.add_argument("--checkpoint", default=None, help="checkpoint (.pt); default: the packaged model")
    p.add_argument("--onnx", required=True, help="output .onnx path")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="default: the model's input size")
    p.add_argument("--topk", type=float, default=None,
                   help="K baked into the graph, in [0, 1]; default or any negative value: the model's own K")
    p.add_argument("--dense", action="store_true", help="export the dense-masked path (same numbers, cost independent of K)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    t = p.add_argument_group("TensorRT (onnxruntime-gpu with the TensorRT execution provider)")
    t.add_argument("--tensorrt", action="store_true",
                   help="also build the TensorRT engine now, into the engine cache next to the .onnx where the node "
                        "looks (the first frame then does not wait minutes for the build)")
    t.add_argument("--max-batch", type=int, default=4, help="largest batch (cameras) the engine serves (default 4)")
    t.add_argument("--precision", default="auto", choices=("auto", "fp16", "fp32"),
                   help="engine precision, as the node's precision parameter (auto: fp16)")
    t.add_argument("--device", default="cuda", help="cuda or cuda:N: the GPU to build for")


def run(a):
    if a.tensorrt:
        if a.max_batch < 1:
            raise FornetError(f"--max-batch must be >= 1, got {a.max_batch}")
        check_tensorrt_available()  # before the export: fail fast, in one line
    info = export_onnx(a.checkpoint, a.onnx, size=a.size, topk_ratio=a.topk, dense=a.dense, opset=a.opset,
                       check=not a.no_check, trt_max_batch=a.max_batch if a.tensorrt else None)
    if a.tensorrt:
        info["tensorrt"] = build_tensorrt_engine(a.onnx, a.max_batch, a.precision, a.device)
    print(json.dumps(info))
