"""CUDA graphs for the network: one captured graph per (batch, input size, K, path, dtype), cached.

On a big GPU a batch-1 forward is launch-bound (issue #20, H200, fornet_s K = 0.25 sparse at
512x1024: 5.3 ms eager, 0.73 ms replayed). A :class:`torch.cuda.CUDAGraph` records the kernels of
one forward once; a replay launches them all at once. A graph freezes every shape, so the cache
key is what changes a shape or the path: the input batch's shape (camera count, input size),
dtype, the focus path (``mode``) and the number of regions K selects (two Ks that select the same
count run the same kernels, so a latency controller nudging K does not re-capture each time). A
new key captures once; every later frame with it replays. At most ``max_graphs`` are kept (each
holds its own memory pool), the least recently used is dropped.

Not captured: :class:`~fornet_ros.model.focus.AdaptiveK` (its per-image count is read from the
data, a host synchronisation a graph cannot hold); the caller runs it eagerly. A capture that fails
(a model whose forward synchronises with the host) is warned about once and that key runs eagerly
(``failed`` says why; ``fornet bench --e2e`` reports it).

Why ``torch.cuda.CUDAGraph`` by hand rather than ``torch.compile(mode="reduce-overhead")``: the
latter needs Triton and compiles for minutes before the first frame, re-compiles silently on new
shapes, and its graph trees hide when a capture happens; here the key and the capture count are
explicit, so the re-capture rule is tested on the CPU with a fake capture (``test/test_cuda_graphs.py``).
No GPU measurement decided this (none was available to this change): scripts/gpu_check.sh times both
the eager and the graph path so the choice can be checked.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict

import torch

from ..model.focus import AdaptiveK, num_selected


class _Captured:
    """One forward captured on CUDA: the input is copied into a static tensor, the graph replayed,
    and its static outputs returned (valid until the next replay of this graph)."""

    def __init__(self, fn, x: torch.Tensor, warmup: int = 2):
        self.static_x = x.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # cuDNN / allocator warm-up outside the capture, as torch's docs do
            for _ in range(warmup):
                fn(self.static_x)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = fn(self.static_x)

    def __call__(self, x: torch.Tensor):
        self.static_x.copy_(x)
        self.graph.replay()
        return self.static_out


def graph_key(x: torch.Tensor, topk_ratio: float, mode: str, model) -> tuple:
    """What a captured graph depends on: batch shape (N, 3, H, W), dtype, memory layout, path, and
    what K changes. For this package's sparse head that is only the number of regions refined,
    round(K * n) over the n regions of the input padded to whole regions (``model.pad_multiple``
    where the model has one); without a focus stage nothing; for any other head (the paper head
    scales four nested ratios with K) K itself."""
    cfg = model.cfg
    if getattr(cfg, "focus", True) is False:
        selected = None  # no focus stage: K changes nothing
    elif getattr(cfg, "head", "sparse") == "sparse" and getattr(cfg, "region_px", 0):
        P = cfg.region_px
        pad = max(P, getattr(model, "pad_multiple", P))
        cells = [math.ceil(d / pad) * pad // P for d in x.shape[-2:]]
        selected = num_selected(topk_ratio, cells[0] * cells[1])
    else:
        selected = float(topk_ratio)
    return tuple(x.shape), x.dtype, x.is_contiguous(memory_format=torch.channels_last), mode, selected


class GraphCache:
    """Captured forwards by key. ``capture(fn, x)`` returns a replay callable (default: a CUDA
    graph; tests pass a fake). ``captures`` counts every capture made, evictions included."""

    def __init__(self, max_graphs: int = 8, capture=_Captured):
        if max_graphs < 1:
            raise ValueError(f"max_graphs must be >= 1, got {max_graphs}")
        self.max_graphs, self.capture = max_graphs, capture
        self.graphs: OrderedDict = OrderedDict()
        self.captures = 0
        self.failed: dict = {}  # key -> why its capture failed (that key then runs eagerly)

    @staticmethod
    def capturable(topk_ratio) -> bool:
        return not isinstance(topk_ratio, AdaptiveK)

    def __call__(self, key, fn, x):
        """``fn(x)`` through the graph for ``key``, capturing it (with ``fn``) on first use."""
        if key in self.failed:
            return fn(x)
        replay = self.graphs.get(key)
        if replay is None:
            try:
                replay = self.capture(fn, x)
            except Exception as e:  # noqa: BLE001 - e.g. an op that synchronises with the host: eager, said once
                self.failed[key] = f"{type(e).__name__}: {e}"
                warnings.warn(f"CUDA graph capture failed ({self.failed[key]}); batch {tuple(key[0])} runs eagerly",
                              RuntimeWarning, stacklevel=2)
                return fn(x)
            self.graphs[key] = replay
            self.captures += 1
            if len(self.graphs) > self.max_graphs:
                self.graphs.popitem(last=False)
        else:
            self.graphs.move_to_end(key)
        return replay(x)
