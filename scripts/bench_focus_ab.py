"""The sparse focus stage before and after a change, interleaved in one process (robust to a busy
machine): the refiner of ``OLD_FOCUS_PY`` (e.g. main's fornet_ros/model/focus.py) and this tree's,
same weights, same inputs, against this tree's dense path; per-region cost = stage ms / regions.

usage: python scripts/bench_focus_ab.py OLD_FOCUS_PY [--size 360 480] [--rounds 15]
"""
import argparse
import importlib.util
import json
import statistics
import sys
import time

import torch

from fornet_ros.inference.backends import fold_batchnorm
from fornet_ros.inference.checkpoint import load_model
from fornet_ros.model.focus import num_selected
from fornet_ros.tools.bench import machine_name

p = argparse.ArgumentParser()
p.add_argument("old")
p.add_argument("--size", type=int, nargs=2, default=(360, 480))
p.add_argument("--ks", type=float, nargs="+", default=[0.1, 0.25, 0.5, 0.75, 0.9])
p.add_argument("--rounds", type=int, default=15)
a = p.parse_args()
spec = importlib.util.spec_from_file_location("old_focus", a.old)
old_focus = importlib.util.module_from_spec(spec)
sys.modules["old_focus"] = old_focus  # dataclasses look their module up
spec.loader.exec_module(old_focus)
model, _ = load_model(None)
model = model.eval()
fold_batchnorm(model)
model = model.to(memory_format=torch.channels_last)
new = model.refiner
b = new.branches
old = old_focus.FocusRefiner.__new__(old_focus.FocusRefiner)  # same modules, the old forward
torch.nn.Module.__init__(old)
old.branches = old_focus.MultiScaleBranches.__new__(old_focus.MultiScaleBranches)
torch.nn.Module.__init__(old.branches)
old.branches.dilations, old.branches.halo = b.dilations, b.halo
old.branches.branches, old.branches.fuse, old.branches.classifier = b.branches, b.fuse, b.classifier
old.region_cells, old.context_factor = new.region_cells, new.context_factor
x = torch.randn(1, 3, *a.size).contiguous(memory_format=torch.channels_last)
res = {"machine": machine_name(), "threads": torch.get_num_threads(), "size": list(a.size), "rounds": a.rounds,
       "rows": []}
with torch.inference_mode():
    inputs = model.focus_inputs(x)[2]
    n = inputs[3].shape[-2] * inputs[3].shape[-1]
    for k in a.ks:
        fns = {"old sparse": lambda: old(*inputs, k, "sparse"), "new sparse": lambda: new(*inputs, k, "sparse"),
               "dense": lambda: new(*inputs, k, "dense")}
        assert (fns["old sparse"]()[0] - fns["new sparse"]()[0]).abs().max() < 1e-4
        ts = {name: [] for name in fns}
        for _ in range(a.rounds):  # interleaved: a load change hits all three alike
            for name, fn in fns.items():
                t = time.perf_counter()
                fn()
                ts[name].append((time.perf_counter() - t) * 1000)
        med = {name: statistics.median(v) for name, v in ts.items()}
        kn = num_selected(k, n)
        res["rows"].append({"topk": k, "regions": kn, "of": n, **{f"{m}_ms": round(v, 3) for m, v in med.items()},
                            "old_per_region_vs_dense": round(med["old sparse"] / kn / (med["dense"] / n), 2),
                            "new_per_region_vs_dense": round(med["new sparse"] / kn / (med["dense"] / n), 2)})
print(json.dumps(res, indent=2))
