"""``fornet init`` (a checkpoint with untrained weights) and ``fornet info`` (what a checkpoint or a
registered variant is: configuration, parameters, GFLOPs)."""

from __future__ import annotations

import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..inference.checkpoint import DEFAULT_INPUT_SIZE, ModelMeta, model_from_checkpoint, read_checkpoint, save_checkpoint
from ..model import VARIANTS, create_model
from ..validation import check_output_file, check_size, check_topk


def model_stats(model, size=(512, 1024)) -> dict:
    """Parameters and forward GFLOPs (torch.utils.flop_counter; FLOP = 2 x multiply-add) at ``size``,
    dense path with K = 1 and sparse path at the model's K."""
    x = torch.zeros(1, 3, *check_size("size", size))
    out = {"params_m": sum(p.numel() for p in model.parameters()) / 1e6}
    model.eval()
    for key, kw in (("gflops_k1", dict(topk_ratio=1.0, mode="dense")), ("gflops_at_k", dict(mode="sparse"))):
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(x, **kw)
        out[key] = fc.get_total_flops() / 1e9
    return out


def add_init_arguments(p):
    p.description = "Write a checkpoint with untrained (randomly initialised) weights: for tests, and as the start of training."
    p.add_argument("--variant", default="fornet_s", choices=sorted(VARIANTS), help="architecture to build")
    p.add_argument("--out", required=True, help="output .pt path")
    p.add_argument("--num-classes", type=int, default=19, help="output classes (19: Cityscapes names)")
    p.add_argument("--topk", type=float, default=0.25, help="the model's own K: share of regions refined, in [0, 1]")
    p.add_argument("--no-focus", action="store_true", help="ablation without selector and focus stage")
    p.add_argument("--input-size", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"),
                   help="the input size stored in the checkpoint (what the network sees)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")


def run_init(a):
    check_topk(a.topk, "--topk")
    check_size("--input-size", a.input_size)
    check_output_file(a.out)
    torch.manual_seed(a.seed)
    model = create_model(a.variant, num_classes=a.num_classes, topk_ratio=a.topk, **({"focus": False} if a.no_focus else {}))
    path = save_checkpoint(a.out, model, ModelMeta.default(a.num_classes, tuple(a.input_size)), untrained=True)
    print(f"wrote untrained {a.variant} ({a.num_classes} classes, K={model.cfg.topk_ratio}) to {path}")


def add_info_arguments(p):
    p.description = "Variant, classes, parameters and GFLOPs (torch's flop counter) of a checkpoint or a named variant."
    g = p.add_mutually_exclusive_group()
    g.add_argument("--checkpoint", default=None, help="checkpoint (.pt) or ONNX model (.onnx: its classes, input "
                   "size and input format; no FLOP count); default: the packaged model")
    g.add_argument("--variant", choices=sorted(VARIANTS), help="describe an untrained variant instead")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="input size of the GFLOPs count (default: the checkpoint's input size; 512x1024 for a variant)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def onnx_info(path) -> dict:
    """What an ONNX model is (a FoR-Net export or a described foreign model), from the file alone."""
    from dataclasses import asdict
    from ..inference import Segmenter
    seg = Segmenter.from_checkpoint(path, device="cpu")
    r = seg.runner
    return {"variant": seg.cfg.variant, "backend": "onnxruntime", "graph": r.graph, "topk_ratio": seg.topk_ratio,
            "classes": list(seg.classes), "palette": [list(c) for c in seg.palette], "input_size": list(seg.input_size),
            "io": asdict(r.io) if r.io is not None else None}


def run_info(a):
    if a.checkpoint and str(a.checkpoint).endswith(".onnx"):
        info = onnx_info(a.checkpoint)
        if a.json:
            print(json.dumps(info, indent=2))
            return
        print(f"variant      {info['variant']}  (ONNX, graph {info['graph']}, K={info['topk_ratio']:g})")
        print(f"classes      {len(info['classes'])}: {', '.join(info['classes'])}")
        print(f"input size   {info['input_size']}")
        if info["io"]:
            print("input        " + ", ".join(f"{k} {v}" for k, v in info["io"].items() if v is not None))
        return
    if a.variant:
        model, ckpt = create_model(a.variant), {}
    else:
        ckpt = read_checkpoint(a.checkpoint)
        model = model_from_checkpoint(ckpt)
    if a.size:
        size, size_from = tuple(a.size), "--size"
    elif ckpt.get("input_size"):
        size, size_from = tuple(ckpt["input_size"]), "the model's input size"
    else:
        size, size_from = DEFAULT_INPUT_SIZE, "default size (an untrained variant has none)"
    info = {"variant": model.cfg.variant, "config": model.cfg.to_dict(), "size": list(size), "size_from": size_from,
            **model_stats(model, size), "classes": ckpt.get("classes"), "input_size": ckpt.get("input_size"),
            "train": ckpt.get("train")}
    if a.json:
        print(json.dumps(info, indent=2))
        return
    cfg = model.cfg
    focus = (f"regions {cfg.region_px}px refined at stride {cfg.refine_stride}" if cfg.focus else "no focus stage")
    print(f"variant      {info['variant']}  (K={cfg.topk_ratio}, {focus})")
    print(f"parameters   {info['params_m']:.2f} M")
    print(f"GFLOPs       {info['gflops_at_k']:.2f} at K={cfg.topk_ratio} (sparse), "
          f"{info['gflops_k1']:.2f} at K=1 (dense), input {size[0]}x{size[1]} ({size_from})")
    if info["classes"]:
        print(f"classes      {len(info['classes'])}: {', '.join(info['classes'])}")
        print(f"input size   {info['input_size']}")
