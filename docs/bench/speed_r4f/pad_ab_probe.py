"""Probe (not a tool): the default's ONNX Runtime network unpadded vs padded (FoRNet.pad_focus_channels) vs
DDRNet-23-slim, one process, three rounds of 15 back-to-back runs per graph and size.

usage: python docs/bench/speed_r4f/pad_ab_probe.py 384x768 448x896 360x480 512x1024"""
import copy
import sys
import warnings

import fornet_ros  # noqa: F401 - first: it sets libgomp's spin count before torch loads libgomp
import torch

from fornet_ros.inference.checkpoint import load_model
from fornet_ros.inference.path_choice import median_ms
from fornet_ros.model import create_model
from fornet_ros.tools.bench import _Network, _ort_timer

warnings.simplefilter("ignore")  # tracer warnings: K and sizes are fixed at export on purpose
torch.set_num_threads(2)
m0, meta = load_model(None)  # the packaged default
m1 = copy.deepcopy(m0)
m1.pad_focus_channels(16)
dd = create_model("ddrnet23_slim").eval()


def timed(fn, runs=15):  # three warm calls (median_ms makes the third), then the median of 15
    fn()
    fn()
    return median_ms(fn, runs)


for H, W in [tuple(map(int, s.split("x"))) for s in sys.argv[1:]]:
    x = torch.randn(1, 3, H, W)
    with torch.inference_mode():
        runs = {name: _ort_timer(_Network(m, k, "dense"), [x], 2)
                for name, m, k in (("orig", m0, 1.0), ("pad", m1, 1.0), ("ddrnet", dd, 0.0))}
    for rep in range(3):
        t = {n: timed(run) for n, run in runs.items()}
        print(f"{H}x{W} rep{rep}: " + "  ".join(f"{n} {v:.1f}" for n, v in t.items())
              + f"   pad/orig {t['pad'] / t['orig']:.3f} pad/ddr {t['pad'] / t['ddrnet']:.3f}", flush=True)
