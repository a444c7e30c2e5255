"""torch.compile (inductor, CPU) against eager torch for one checkpoint, the way the Segmenter runs
it (BN folded, channels_last, fp32, no grad): compile warm-up (first call) and steady-state median,
interleaved in one process so both see the same machine. Prints one JSON object.

usage: python scripts/bench_compile.py [--checkpoint default] [--size H W ...] [--topk 1.0] [--mode dense]
       [--runs 15] [--threads 2]
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch

from fornet_ros.inference import Segmenter
from fornet_ros.inference.checkpoint import resolve_checkpoint
from fornet_ros.tools.bench import machine_name

p = argparse.ArgumentParser()
p.add_argument("--checkpoint", default=None)
p.add_argument("--size", type=int, nargs=2, action="append", metavar=("H", "W"))
p.add_argument("--topk", type=float, default=None, help="default: the model's K")
p.add_argument("--mode", default="dense", choices=("dense", "sparse"))
p.add_argument("--runs", type=int, default=15)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
seg = Segmenter.from_checkpoint(a.checkpoint, device="cpu", backend="torch")
model, k = seg.runner.model, a.topk if a.topk is not None else seg.topk_ratio
rows = []
for h, w in a.size or [seg.input_size]:
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, h, w), np.float32)).contiguous(
        memory_format=torch.channels_last)
    torch._dynamo.reset()
    compiled = torch.compile(model)
    with torch.inference_mode():
        eager_out = model(x, topk_ratio=k, mode=a.mode)["logits"]
        t = time.perf_counter()
        comp_out = compiled(x, topk_ratio=k, mode=a.mode)["logits"]
        warmup_s = time.perf_counter() - t
        times = {"eager": [], "compiled": []}
        for _ in range(a.runs):  # interleaved
            for name, fn in (("eager", model), ("compiled", compiled)):
                t = time.perf_counter()
                fn(x, topk_ratio=k, mode=a.mode)
                times[name].append((time.perf_counter() - t) * 1e3)
    med = {n: statistics.median(v) for n, v in times.items()}
    rows.append({"size": [h, w], "k": k, "mode": a.mode, "eager_ms": round(med["eager"], 2),
                 "compiled_ms": round(med["compiled"], 2), "ratio": round(med["compiled"] / med["eager"], 3),
                 "compile_warmup_s": round(warmup_s, 1),
                 "max_abs_logit_diff": float((eager_out - comp_out).abs().max())})
print(json.dumps({"machine": machine_name(), "torch": torch.__version__, "threads": a.threads, "runs": a.runs,
                  "checkpoint": resolve_checkpoint(a.checkpoint).name,
                  "rows": rows}, indent=1))
