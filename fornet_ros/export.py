"""ONNX export that keeps compute ∝ K, with the model's metadata inside the file.

The default graph is the **sparse** focus path: TopK over the region importance, a gather of the
selected regions with their halo (Gather), the multi-scale branches on that batch of crops (Conv),
and a scatter back (ScatterND, add) — standard ops that onnxruntime and TensorRT execute, so the
deployed model pays for the K selected regions only. ``dense=True`` exports the dense-masked path
instead (identical numbers, cost independent of K). The input size (H, W) and K are fixed at
export (the node resizes every image to its input size anyway; re-export for another K); the batch
is dynamic. Outputs: ``logits`` (N, C, H/s, W/s), ``importance`` and ``selected`` (N, 1, Hr, Wr).

Metadata (``metadata_props``, all strings, JSON where structured): ``fornet_format``, ``classes``,
``palette``, ``mean``, ``std``, ``input_size``, ``topk_ratio``, ``model_config``, ``graph``
(sparse|dense) — so a ``.onnx`` file alone is enough to run the node.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import CheckpointError, ModelMeta, load_model
from .validation import OPSETS, check_number, check_output_file, check_size, check_topk

ONNX_FORMAT = "fornet_ros/onnx/1"
OUTPUTS = ("logits", "importance", "selected")


class _OnnxWrapper(nn.Module):
    def __init__(self, model, topk_ratio: float, mode: str):
        super().__init__()
        self.model, self.topk_ratio, self.mode = model, topk_ratio, mode

    def forward(self, x):
        out = self.model(x, topk_ratio=self.topk_ratio, mode=self.mode)
        return tuple(out[k] for k in OUTPUTS)


def onnx_metadata(meta: ModelMeta, cfg, topk_ratio: float, size, graph: str) -> dict[str, str]:
    return {"fornet_format": ONNX_FORMAT, "classes": json.dumps(list(meta.classes)),
            "palette": json.dumps([list(c) for c in meta.palette]), "mean": json.dumps(list(meta.mean)),
            "std": json.dumps(list(meta.std)), "input_size": json.dumps(list(size)), "topk_ratio": json.dumps(topk_ratio),
            "model_config": json.dumps(cfg.to_dict()), "graph": graph}


def read_onnx_metadata(path) -> tuple[ModelMeta, dict]:
    """(ModelMeta, {"topk_ratio", "model_config", "graph"}) of an exported file; CheckpointError if
    the file is missing or was not written by :func:`export_onnx`."""
    import onnx
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and others for corrupt files
        raise CheckpointError(f"cannot read ONNX model {path}: {type(e).__name__}: {e}") from e
    props = {p.key: p.value for p in model.metadata_props}
    if props.get("fornet_format") != ONNX_FORMAT:
        raise CheckpointError(f"{path} has no fornet_ros metadata (export it with `fornet export`)")
    try:
        meta = ModelMeta(tuple(json.loads(props["classes"])), tuple(tuple(c) for c in json.loads(props["palette"])),
                         tuple(json.loads(props["mean"])), tuple(json.loads(props["std"])),
                         tuple(json.loads(props["input_size"])))
        extra = {"topk_ratio": float(json.loads(props["topk_ratio"])), "model_config": json.loads(props["model_config"]),
                 "graph": props["graph"]}
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"bad fornet_ros metadata in {path}: {e}") from e
    return meta, extra


def export_onnx(checkpoint, onnx_path, size=None, topk_ratio=None, dense: bool = False, opset: int = 17,
                check: bool = True) -> dict:
    """Writes ``onnx_path`` (sparse graph unless ``dense``); returns what was written and, when
    checked, the max |torch - onnxruntime| difference over the outputs for a batch of 2."""
    check_topk(topk_ratio, "topk_ratio")
    check_number("opset", opset, *OPSETS)
    size = check_size("size", size) if size is not None else None
    onnx_path = check_output_file(onnx_path)
    model, meta = load_model(checkpoint)
    size = tuple(size or meta.input_size)
    K = model.cfg.topk_ratio if topk_ratio is None or topk_ratio < 0 else float(topk_ratio)
    graph = "dense" if dense or not model.cfg.focus else "sparse"
    wrapper = _OnnxWrapper(model, K, graph).eval()  # eval on the wrapper: export restores its mode recursively
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    axes = {name: {0: "batch"} for name in ("image", *OUTPUTS)}
    with warnings.catch_warnings():
        # Expected, and harmless here, because H, W and K are fixed at export (module doc): the tracer
        # warns that the region count int(K * regions) and the "no region selected" test become
        # constants (they are, for the fixed size and K), and that advanced indexing is wrong for
        # negative indices (ours are TopK / arange indices, never negative; the parity check below
        # runs the graph). Only these messages are silenced; any other warning still shows.
        warnings.filterwarnings("ignore", r"Converting a tensor to a Python (float|boolean|integer|index)",
                                category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", r"Exporting aten::index operator of advanced indexing", category=UserWarning)
        torch.onnx.export(wrapper, (torch.randn(1, 3, *size),), str(onnx_path), input_names=["image"],
                          output_names=list(OUTPUTS), dynamic_axes=axes, opset_version=opset, dynamo=False)
    import onnx
    proto = onnx.load(str(onnx_path))
    for key, value in onnx_metadata(meta, model.cfg, K, size, graph).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(onnx_path))
    info = {"onnx": str(onnx_path), "size": list(size), "topk_ratio": K, "graph": graph, "opset": opset,
            "ops": sorted({n.op_type for n in proto.graph.node})}
    if check:
        import onnxruntime as ort
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        x = torch.randn(2, 3, *size)  # a batch size other than the traced one
        with torch.no_grad():
            ref = wrapper(x)
        got = sess.run(list(OUTPUTS), {"image": x.numpy()})
        info["max_abs_diff"] = float(max(np.abs(r.numpy() - g).max() for r, g in zip(ref, got)))
    return info


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
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")


def run(a):
    print(json.dumps(export_onnx(a.checkpoint, a.onnx, size=a.size, topk_ratio=a.topk, dense=a.dense, opset=a.opset,
                                 check=not a.no_check)))
