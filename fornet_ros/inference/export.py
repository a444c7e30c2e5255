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

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import FornetError
from ..validation import OPSETS, check_number, check_output_file, check_size, check_topk, file_problem
from .checkpoint import CheckpointError, ModelMeta, load_model

ONNX_FORMAT = "fornet_ros/onnx/1"
# What the exporter writes for a checkpoint changed (revision 2: the focus convs' inputs padded to
# whole SIMD blocks, FoRNet.pad_focus_channels): part of the export cache's file names
# (inference.backends.exported), so an export cached by an older version is not reused.
EXPORT_REVISION = 2
OUTPUTS = ("logits", "importance", "selected")


class _OnnxWrapper(nn.Module):
    def __init__(self, model, topk_ratio: float, mode: str):
        super().__init__()
        self.model, self.topk_ratio, self.mode = model, topk_ratio, mode

    def forward(self, x):
        out = self.model(x, topk_ratio=self.topk_ratio, mode=self.mode)
        return tuple(out[k] for k in OUTPUTS)


def onnx_metadata(meta: ModelMeta, cfg, topk_ratio: float, size, graph: str,
                  trt_max_batch: int | None = None) -> dict[str, str]:
    props = {"fornet_format": ONNX_FORMAT, "classes": json.dumps(list(meta.classes)),
             "palette": json.dumps([list(c) for c in meta.palette]), "mean": json.dumps(list(meta.mean)),
             "std": json.dumps(list(meta.std)), "input_size": json.dumps(list(size)),
             "topk_ratio": json.dumps(topk_ratio), "model_config": json.dumps(cfg.to_dict()), "graph": graph}
    if trt_max_batch:  # the TensorRT optimisation profile the engine was built for (batches 1..N)
        props["trt_max_batch"] = str(int(trt_max_batch))
    return props


def onnx_properties(path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file; CheckpointError if it is missing or unreadable."""
    import onnx
    path = Path(path)
    if (problem := file_problem(path, "ONNX model")) is not None:  # missing, or a folder
        raise CheckpointError(problem)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and others for corrupt files
        raise CheckpointError(f"cannot read ONNX model {path}: {type(e).__name__}: {e}") from e
    return {p.key: p.value for p in model.metadata_props}


def read_onnx_metadata(path) -> tuple[ModelMeta, dict]:
    """(ModelMeta, {"topk_ratio", "model_config", "graph"}) of an exported file; CheckpointError if
    the file is missing or was not written by :func:`export_onnx`."""
    props = onnx_properties(path)
    if props.get("fornet_format") != ONNX_FORMAT:
        raise CheckpointError(f"{path} has no fornet_ros metadata (export it with `fornet export`)")
    try:
        meta = ModelMeta(tuple(json.loads(props["classes"])), tuple(tuple(c) for c in json.loads(props["palette"])),
                         tuple(json.loads(props["mean"])), tuple(json.loads(props["std"])),
                         tuple(json.loads(props["input_size"])))
        extra = {"topk_ratio": float(json.loads(props["topk_ratio"])), "model_config": json.loads(props["model_config"]),
                 "graph": props["graph"], "trt_max_batch": int(props.get("trt_max_batch", 0)) or None}
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"bad fornet_ros metadata in {path}: {e}") from e
    return meta, extra


TRT = "TensorrtExecutionProvider"


def check_tensorrt_available() -> None:
    """FornetError (one line) unless this onnxruntime offers the TensorRT execution provider."""
    import onnxruntime as ort
    have = ort.get_available_providers()
    if TRT not in have:
        raise FornetError(f"--tensorrt needs onnxruntime-gpu built with the TensorRT execution provider and TensorRT "
                          f"installed; this onnxruntime {ort.__version__} offers only {', '.join(have)} "
                          "(see docs/deploy.md)")


def build_tensorrt_engine(onnx_path, max_batch: int, precision: str = "auto", device: str = "cuda") -> dict:
    """Build the TensorRT engine of an exported model ahead of time, into the engine cache next to
    it, with the options :class:`~fornet_ros.inference.runtime.OrtRunner` uses (so the node's first frame
    does not wait minutes for it): a session on the TensorRT provider only, one frame at batch 1
    and one at ``max_batch``. Returns the cache folder, the engine files written and the time."""
    import time

    import onnxruntime as ort

    from .runtime import tensorrt_options
    check_tensorrt_available()
    if precision not in ("auto", "fp16", "fp32"):
        raise FornetError(f"--precision must be auto, fp16 or fp32 for TensorRT, got {precision!r}")
    meta, extra = read_onnx_metadata(onnx_path)
    dev_id = int(device.split(":")[1]) if device.startswith("cuda:") else 0
    opts = tensorrt_options(onnx_path, dev_id, precision != "fp32", meta.input_size, max_batch)
    cache = Path(opts["trt_engine_cache_path"])
    before = set(cache.iterdir())
    t = time.perf_counter()
    cuda = ([("CUDAExecutionProvider", {"device_id": dev_id})]
            if "CUDAExecutionProvider" in ort.get_available_providers() else [])
    sess = ort.InferenceSession(str(onnx_path), providers=[(TRT, opts), *cuda])  # the runner's partitioning
    if sess.get_providers()[0] != TRT:
        raise FornetError(f"onnxruntime did not run {onnx_path} on TensorRT (providers: {sess.get_providers()})")
    for n in sorted({1, max_batch}):
        sess.run(None, {"image": np.zeros((n, 3, *meta.input_size), np.float32)})
    return {"engine_cache": str(cache), "engine_files": sorted(p.name for p in set(cache.iterdir()) - before),
            "build_s": round(time.perf_counter() - t, 1), "fp16": opts["trt_fp16_enable"], "max_batch": max_batch}


def export_onnx(checkpoint, onnx_path, size=None, topk_ratio=None, dense: bool = False, opset: int = 17,
                check: bool = True, trt_max_batch: int | None = None) -> dict:
    """Writes ``onnx_path`` (sparse graph unless ``dense``); returns what was written and, when
    checked, the max |torch - onnxruntime| difference over the outputs for a batch of 2.
    ``trt_max_batch`` records the TensorRT optimisation profile (batches 1..N) in the metadata."""
    check_topk(topk_ratio, "topk_ratio")
    check_number("opset", opset, *OPSETS)
    size = check_size("size", size) if size is not None else None
    onnx_path = check_output_file(onnx_path)
    if onnx_path.suffix.lower() != ".onnx":  # the runtime picks the backend by the suffix
        raise FornetError(f"the ONNX output must be a .onnx file, got {onnx_path}")
    model, meta = load_model(checkpoint)
    size = tuple(size or meta.input_size)
    K = model.cfg.topk_ratio if topk_ratio is None or topk_ratio < 0 else float(topk_ratio)
    # the paper head has one graph: its masks gate convolutions that run over the whole map
    graph = "dense" if dense or not model.cfg.focus or model.cfg.head != "sparse" else "sparse"
    # eval on the wrappers: export restores their mode recursively
    trained = _OnnxWrapper(model, K, graph).eval()  # the model as trained: the parity check's reference
    wrapper = _OnnxWrapper(copy.deepcopy(model), K, graph).eval()
    if hasattr(wrapper.model, "pad_focus_channels"):  # same numbers in ONNX Runtime's fast conv layout
        wrapper.model.pad_focus_channels()
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
    for key, value in onnx_metadata(meta, model.cfg, K, size, graph, trt_max_batch).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(onnx_path))
    info = {"onnx": str(onnx_path), "size": list(size), "topk_ratio": K, "graph": graph, "opset": opset,
            "ops": sorted({n.op_type for n in proto.graph.node})}
    if check:
        import onnxruntime as ort
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        x = torch.randn(2, 3, *size)  # a batch size other than the traced one
        with torch.no_grad():
            ref = trained(x)  # so the check covers the padding too
        got = sess.run(list(OUTPUTS), {"image": x.numpy()})
        info["max_abs_diff"] = float(max(np.abs(r.numpy() - g).max() for r, g in zip(ref, got)))
    return info

