"""Which focus path to run, from measurement: a small cost table per (device, input size, batch).

The sparse path (gather the K selected regions, refine them, scatter back) does work ∝ K but pays
a gather/scatter overhead per region; the dense path refines every region and masks, so its work
does not depend on K. Which is cheaper depends on the device, the input size, the batch and K —
on one CPU sparse wins at K = 0.25 and loses at K = 0.9 — so ``mode="auto"`` asks a table measured
at warm-up (:func:`measure_costs`) instead of a rule of thumb.

- :class:`CostTable`: the network's time before the focus stage (``base_ms``), the sparse focus
  stage's time at a few K, and the dense one's (one number: its work is the same at every K; the
  median over the K measured). ``cost(K)`` is the whole network's predicted time on the cheaper
  path, sparse interpolated linearly between the measured K — the curve the latency controller
  plans on (:mod:`fornet_ros.node.k_controller`), with no assumption that it rises with K.
- :class:`PathChooser`: the cheaper path for the K at hand, with hysteresis: it leaves the path it
  is on only when the other is cheaper by more than ``hysteresis`` (a fraction), so a K moving
  around the crossing point does not flap between the two. At any K it runs at most
  ``hysteresis`` slower than the faster path.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..model.focus import AdaptiveK

DEFAULT_KS = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class CostTable:
    """Measured focus-stage cost (ms) of one model on one device, input size and batch."""

    ks: tuple[float, ...]  # ascending, in (0, 1)
    sparse_ms: tuple[float, ...]  # the sparse focus stage at each K
    dense_ms: float  # the dense focus stage (any K)
    base_ms: float = 0.0  # everything before the focus stage
    key: tuple = ()  # (device, input size, batch) it was measured for

    def __post_init__(self):
        if len(self.ks) != len(self.sparse_ms) or not self.ks or list(self.ks) != sorted(self.ks):
            raise ValueError(f"need ascending ks and one sparse cost per K, got {self.ks}, {self.sparse_ms}")

    def sparse(self, k: float) -> float:
        """Sparse focus cost at K: linear between measured K, through (0, 0) below the first one,
        extrapolated along the last segment above the last."""
        ks, ms = (0.0, *self.ks), (0.0, *self.sparse_ms)
        if k <= ks[-1]:
            return float(np.interp(k, ks, ms))
        slope = (ms[-1] - ms[-2]) / (ks[-1] - ks[-2])
        return float(ms[-1] + slope * (k - ks[-1]))

    def focus(self, k: float, mode: str) -> float:
        if k <= 0:
            return 0.0
        return self.dense_ms if mode == "dense" else self.sparse(k)

    def cheaper(self, k: float) -> str:
        """The cheaper path at K (dense on a tie, and at K = 1 where sparse gathers everything)."""
        return "sparse" if 0 < k < 1 and self.sparse(k) < self.dense_ms else "dense"

    def cost(self, k: float) -> float:
        """The whole network's predicted ms at K on the cheaper path."""
        return self.base_ms + self.focus(k, self.cheaper(k))

    def as_dict(self) -> dict:
        return {"ks": list(self.ks), "sparse_ms": [round(v, 3) for v in self.sparse_ms],
                "dense_ms": round(self.dense_ms, 3), "base_ms": round(self.base_ms, 3), "key": list(self.key)}


class PathChooser:
    """``mode="auto"`` from a :class:`CostTable`, with hysteresis (see the module docstring)."""

    def __init__(self, table: CostTable, hysteresis: float = 0.03):
        if not 0 <= hysteresis < 1:
            raise ValueError(f"hysteresis must be in [0, 1), got {hysteresis}")
        self.table, self.hysteresis = table, hysteresis
        self.path: str | None = None  # the path taken last

    def __call__(self, k) -> str:
        """The path to run at K (a float, or an AdaptiveK: planned at its ``k_max``, the most it refines)."""
        k = k.k_max if isinstance(k, AdaptiveK) else float(k)
        t = self.table
        best = t.cheaper(k)
        if k <= 0 or k >= 1 or self.path is None:
            self.path = best
        elif best != self.path and t.focus(k, best) < (1 - self.hysteresis) * t.focus(k, self.path):
            self.path = best
        return self.path


def median_ms(fn, runs: int) -> float:
    """Median wall time of ``runs`` calls of ``fn`` after one warm call (allocator, oneDNN primitives)."""
    fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    return statistics.median(ts)


@torch.inference_mode()
def measure_costs(model, x: torch.Tensor, ks=DEFAULT_KS, runs: int = 2) -> CostTable:
    """Time the sparse and dense focus stages of ``model`` (a FoR-Net with the sparse head and
    focus on) on batch ``x`` (on the model's device, dtype and layout) at each K (dense at the
    first and last: its work is the same at every K), and the stages before them. A second or
    two on a CPU at 360x480."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)

    def timed(fn):
        def run():
            fn()
            sync()
        return median_ms(run, runs)
    base = timed(lambda: model.focus_inputs(x))
    inputs = model.focus_inputs(x)[2]
    sparse = [timed(lambda k=k: model.refiner(*inputs, k, "sparse")) for k in ks]
    dense = statistics.median(timed(lambda k=k: model.refiner(*inputs, k, "dense")) for k in {ks[0], ks[-1]})
    return CostTable(tuple(float(k) for k in ks), tuple(sparse), dense, base,
                     (str(x.device), tuple(x.shape[-2:]), int(x.shape[0])))


class FocusPaths:
    """A Segmenter's focus-path choice: one measured table and chooser per batch size (cameras),
    and the path its last frame took (``last``: sparse, dense, or none where nothing is refined)."""

    def __init__(self, hysteresis: float = 0.03):
        self.hysteresis = hysteresis
        self.choosers: dict[int, PathChooser] = {}
        self.last: str | None = None

    def add(self, table: CostTable) -> None:
        self.choosers[table.key[2] if table.key else 1] = PathChooser(table, self.hysteresis)

    def warm(self, runner, input_size, batch: int = 1, ks=DEFAULT_KS, runs: int = 2) -> CostTable | None:
        """Measure and add the table of a torch ``runner``'s model for ``batch`` images of
        ``input_size``; None (nothing to choose) for an ONNX graph (its path is fixed at export),
        the paper head or a focus-off build."""
        cfg = runner.cfg
        if runner.backend != "torch" or getattr(cfg, "head", None) != "sparse" or not cfg.focus:
            return None
        x = torch.randn(batch, 3, *input_size, generator=torch.Generator().manual_seed(0))
        x = x.to(runner.device, runner.dtype)
        x = x.contiguous(memory_format=torch.channels_last) if runner.channels_last else x
        table = measure_costs(runner.model, x, ks, runs)
        self.add(table)
        return table

    def table(self, batch: int = 1) -> CostTable | None:
        """The table measured for ``batch`` images (or the nearest batch measured); None before warm-up."""
        if not self.choosers:
            return None
        return self.choosers[min(self.choosers, key=lambda b: (abs(b - batch), b))].table

    def resolve(self, k, mode: str, batch: int) -> str:
        """The concrete path for ``mode`` (auto: the measured cheaper one; before any warm-up the
        model's own rule, dense only when every region is selected)."""
        if isinstance(k, float | int) and k <= 0:
            path = "none"
        elif mode != "auto":
            path = mode
        elif self.choosers:
            near = min(self.choosers, key=lambda b: (abs(b - batch), b))
            path = self.choosers[near](k)
        else:
            path = "dense" if not isinstance(k, AdaptiveK) and k >= 1 else "sparse"
        self.last = path
        return path
