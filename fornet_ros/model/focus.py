"""Focus stage: Top-K activation, then multi-scale refinement of the selected regions only, at
high resolution (stride 4 by default), producing logits that replace the cheap stride-8 ones there.

Why: labels predicted at stride 8 and upsampled 8x cannot place a boundary or a 1-2 px pole
(round 1 of this project refined *features* at stride 8 and gained nothing measurable). A dense
stride-4 refinement everywhere would cost as much as the backbone; refining only K of the regions
is what makes it affordable (the PointRend / SegBlocks idea on FoR-Net's Top-K regions).

What the stage reads, all on the model's zero-padded grid (the model pads its input to whole regions):
- ``fine``: backbone features at the refine stride s (stem stride 4, or stride 2) — where detail lives;
- ``context``: stride-8 features projected by a 1x1 conv, read at stride s by nearest lookup;
- ``coarse_up``: the cheap head's stride-8 logits, bilinearly upsampled to stride s — the
  prediction being corrected (PointRend feeds coarse logits to its point head the same way).
Per selected region, the three are gathered with the halo the branches need, three parallel 3x3
branches with dilations 1/2/3 (the paper's multi-scale branches: receptive fields 3/5/7 cells at
stride s) run as *valid* convs on their own sub-crop so each outputs exactly the region, a 1x1 conv
fuses them, a 1x1 classifier emits a logit correction ``delta``, and the region's logits become
``coarse_up + delta``. Unselected regions keep ``coarse_up``. FLOPs are exactly ∝ K (tested); the
gathers copy the halo. The dense path runs the same branches with zero "same" padding over the
whole map and masks: it computes identical numbers (tested to 1e-4) and is faster at K = 1, which
is why ``mode="auto"`` uses it there.

Choices where the paper is silent (measured in docs/benchmarks.md):
- regions: squares of ``region_px`` input pixels, default 32 (8x8 cells at stride 4). The oracle
  share of errors a 25 % area budget can cover is 84 % at 16 px, 77 % at 32 px and 65 % at the
  round-1 64 px (an oracle picking the regions of most errors, measured during development), but 16-px regions gather 10x10 cells (6.25x their area) for
  4x4 outputs: on this CPU their focus stage at K = 0.25 cost 0.92x the dense K = 1 one, 32-px
  regions 0.41x (docs/benchmarks.md);
- K is a ratio of the region count, k = round(K * n) but at least 1 when K > 0;
- the branches run at stride s only (not also at stride 8): round 1 measured stride 8 refinement
  as no better than none, and the head already sees stride-8 context;
- the classifier starts at zero, so an untrained focus stage leaves the cheap prediction unchanged;
- how the selector learns: (1) an explicit hardness target, BCE between the region logit and the
  region's error rate of the cheap stride-8 prediction (:func:`fornet_ros.losses.selector_loss`:
  boundaries and thin structures are where that prediction is wrong), and (2) a straight-through
  gate: the correction is multiplied by ``1 + p - p.detach()`` (value 1, gradient to the region's
  importance p), so the segmentation loss also tells the selector which corrections helped,
  without shrinking corrections in regions with low importance as a soft gate would;
- no BatchNorm in the focus stage, so crops and the dense map compute the same in train and eval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import zero_input_channels


def num_selected(topk_ratio: float, num_regions: int) -> int:
    """Regions kept by the Top-K activation: round(K*n), at least 1 when K > 0, at most n."""
    if topk_ratio <= 0:
        return 0
    return min(num_regions, max(1, int(math.floor(topk_ratio * num_regions + 0.5))))


@dataclass(frozen=True)
class AdaptiveK:
    """Content-adaptive Top-K (issue #15; the paper names a fixed K as its main limitation): refine
    the regions whose importance — the selector's predicted error rate of the cheap prediction — is
    at least ``threshold``, but never fewer than ``k_min`` nor more than ``k_max`` of the regions
    (ratios; the most important ones win). An empty road refines ``k_min``, a cluttered crossing up
    to ``k_max``. Each image of a batch gets its own count. Raising the threshold never selects more."""

    threshold: float
    k_min: float = 0.0
    k_max: float = 1.0

    def __post_init__(self):
        if not (0.0 <= self.k_min <= self.k_max <= 1.0) or not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"need 0 <= k_min <= k_max <= 1 and threshold in [0, 1], got {self}")

    def counts(self, scores):
        """Regions refined per image for (B, n) importances."""
        n = scores.shape[1]
        lo, hi = num_selected(self.k_min, n), num_selected(self.k_max, n)
        return (scores >= self.threshold).sum(1).clamp(lo, hi)


def select_regions(scores, topk_ratio):
    """Which regions to refine: flat (image index, region index) pairs over the batch, and each one's
    importance. ``topk_ratio``: a float K (the same round(K*n) most important regions per image, a
    static-shape TopK that ONNX export keeps) or an :class:`AdaptiveK` (a count per image)."""
    B, n = scores.shape
    if isinstance(topk_ratio, AdaptiveK):
        counts = topk_ratio.counts(scores)
        order = scores.argsort(dim=1, descending=True)
        keep = torch.arange(n, device=scores.device)[None] < counts[:, None]
        bi, pos = keep.nonzero(as_tuple=True)
        ridx = order[bi, pos]
    else:
        k = num_selected(topk_ratio, n)
        ridx = scores.topk(k, dim=1).indices.reshape(-1)  # (B*k,), image-major
        bi = torch.arange(B, device=scores.device).repeat_interleave(k)
    return bi, ridx, scores[bi, ridx]


class RegionIndex:
    """Flat NHWC row indices of every region's halo crop and of its interior, precomputed once
    per map size (a frame then gathers all its crops with one ``index_select`` per input map and
    scatters all deltas with one ``index_put``: no Python loop over regions, no per-frame index
    arithmetic beyond adding the image offset). Hand-written because torch has no batched
    crop/paste op; ``F.unfold`` would materialise every region's crop, selected or not."""

    def __init__(self, Hs: int, Ws: int, r: int, halo: int, factor: int, device):
        Hr, Wr, size = Hs // r, Ws // r, r + 2 * halo
        n = Hr * Wr
        reg = torch.arange(n, device=device)
        ar = torch.arange(size, device=device)
        top, left = (reg // Wr) * r - halo, (reg % Wr) * r - halo
        rows, cols = top[:, None] + ar, left[:, None] + ar  # (n, size) on the refine grid
        inside = ((rows >= 0) & (rows < Hs))[:, :, None] & ((cols >= 0) & (cols < Ws))[:, None, :]
        self.valid = inside.reshape(n, -1)  # (n, size*size)
        self.size, self.cells = size, Hs * Ws
        self.crop = {}  # factor -> (n, size*size) flat index into a map at that factor's stride
        for f in {1, factor}:
            h, w = Hs // f, Ws // f
            rr = torch.div(rows, f, rounding_mode="floor").clamp(0, h - 1)
            cc = torch.div(cols, f, rounding_mode="floor").clamp(0, w - 1)
            self.crop[f] = (rr[:, :, None] * w + cc[:, None, :]).reshape(n, -1)
        inner = torch.arange(r, device=device)
        self.inner = (((reg // Wr) * r)[:, None, None] + inner[:, None]) * Ws + ((reg % Wr) * r)[:, None, None] + inner
        self.inner = self.inner.reshape(n, -1)  # (n, r*r) flat index into the refine grid

    def gather(self, maps, factors, bi, ridx):
        """(N, sum C, size, size) channels-last crops of ``maps`` (each at its factor's stride),
        concatenated on channels, zero outside the map."""
        parts, S = [], self.size
        for fmap, f in zip(maps, factors):
            B, C, h, w = fmap.shape
            idx = (self.crop[f][ridx] + (bi * (h * w))[:, None]).reshape(-1)
            parts.append(fmap.permute(0, 2, 3, 1).reshape(-1, C).index_select(0, idx))
        crops = torch.cat(parts, 1).reshape(-1, S, S, sum(m.shape[1] for m in maps))  # -1: a dynamic batch in ONNX
        crops = crops.masked_fill_(~self.valid[ridx].reshape(-1, S, S, 1), 0.0)
        return crops.permute(0, 3, 1, 2)


class MultiScaleBranches(nn.Module):
    """Parallel 3x3 convs with different dilations, fused by a 1x1 conv, then a 1x1 classifier
    that emits a logit correction (zero-initialised)."""

    def __init__(self, in_channels: int, branch_channels: int, refine_channels: int, num_classes: int,
                 dilations: tuple[int, ...]):
        super().__init__()
        self.dilations = tuple(dilations)
        self.halo = max(self.dilations)
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, branch_channels, 3, padding=0, dilation=d) for d in self.dilations)
        self.fuse = nn.Conv2d(branch_channels * len(self.dilations), refine_channels, 1)
        self.classifier = nn.Conv2d(refine_channels, num_classes, 1)
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def _head(self, outs):
        return self.classifier(F.relu(self.fuse(torch.cat(outs, 1)), inplace=True))

    def dense(self, x):
        return self._head([F.relu(F.conv2d(x, b.weight, b.bias, padding=d, dilation=d), inplace=True)
                           for b, d in zip(self.branches, self.dilations)])

    def on_crops(self, crops, size: int):
        """crops: (N, C, size+2*halo, size+2*halo) -> (N, classes, size, size), valid convs only."""
        h = self.halo
        outs = []
        for b, d in zip(self.branches, self.dilations):
            o = h - d  # each branch reads only the halo its own dilation needs
            outs.append(F.relu(b(crops[:, :, o:o + size + 2 * d, o:o + size + 2 * d]), inplace=True))
        return self._head(outs)


class FocusRefiner(nn.Module):
    """Top-K region selection + multi-scale refinement of the selected regions at the refine stride."""

    def __init__(self, fine_channels: int, context_channels: int, num_classes: int, branch_channels: int,
                 refine_channels: int, dilations, region_cells: int, context_factor: int):
        super().__init__()
        self.branches = MultiScaleBranches(fine_channels + context_channels + num_classes, branch_channels,
                                           refine_channels, num_classes, dilations)
        self.region_cells = region_cells  # side of a region in refine-stride cells
        self.context_factor = context_factor  # 8 / refine stride

    @torch.no_grad()
    def widen_context(self, extra: int) -> None:
        """Inference only: take ``extra`` more context channels that are always zero (the caller widens
        the context projection with zero filters; :meth:`FoRNet.pad_focus_channels`). Each branch
        conv gets zero weights at those input positions, so every output stays the same."""
        for conv in self.branches.branches:  # the context ends where coarse_up starts
            zero_input_channels(conv, conv.in_channels - self.branches.classifier.out_channels, extra)

    def forward(self, fine, context, coarse_up, importance, topk_ratio, mode: str = "auto", inplace: bool = False):
        """fine (B, Cf, Hs, Ws) and coarse_up (B, classes, Hs, Ws) at the refine stride, Hs and Ws
        multiples of region_cells; context (B, Cc, Hs/f, Ws/f); importance (B, 1, Hr, Wr) in [0, 1];
        topk_ratio: a float K or an :class:`AdaptiveK`.

        Returns (logits (B, classes, Hs, Ws), selected mask (B, 1, Hr, Wr) float 0/1).
        mode: "sparse", "dense" or "auto" (dense when every region is selected). ``inplace``: the
        sparse path may add its deltas into ``coarse_up`` (a caller that owns it, at inference)."""
        if mode not in ("auto", "sparse", "dense"):
            raise ValueError(f"mode must be auto, sparse or dense, got {mode!r}")
        B, _, Hs, Ws = fine.shape
        r = self.region_cells
        Hr, Wr = Hs // r, Ws // r
        n = Hr * Wr
        scores = importance.reshape(B, n)
        bi, ridx, p = select_regions(scores, topk_ratio)
        if bi.numel() == 0:
            return coarse_up, torch.zeros_like(importance)
        gate = 1.0 + p - p.detach()  # straight-through: value 1, gradient to the importance
        flat = bi * n + ridx  # region maps are written through the flat view (one ScatterElements in ONNX)
        selected = scores.new_zeros(B * n).scatter(0, flat, torch.ones_like(p)).reshape(B, 1, Hr, Wr)
        if mode == "dense" or (mode == "auto" and bi.numel() == B * n):
            f = self.context_factor
            x = torch.cat([fine, F.interpolate(context, scale_factor=f, mode="nearest"), coarse_up], 1)
            gmap = scores.new_zeros(B * n).scatter(0, flat, gate).reshape(B, 1, Hr, Wr)
            gmap = gmap.repeat_interleave(r, 2).repeat_interleave(r, 3)
            return coarse_up + self.branches.dense(x) * gmap, selected
        inplace = inplace and not torch.is_grad_enabled() and not torch.jit.is_tracing()
        return self._sparse(fine, context, coarse_up, bi, ridx, gate, inplace), selected

    def _index(self, Hs: int, Ws: int, device) -> RegionIndex:
        key = (Hs, Ws, str(device))
        if getattr(self, "_index_key", None) != key or torch.jit.is_tracing():
            self._region_index, self._index_key = RegionIndex(Hs, Ws, self.region_cells, self.branches.halo,
                                                              self.context_factor, device), key
        return self._region_index

    def _sparse(self, fine, context, coarse_up, bi, ridx, gate, inplace: bool = False):
        """Gather the selected regions' halo crops (precomputed indices), refine them, add each
        delta into its region of ``coarse_up``: in place when ``inplace`` (the caller owns
        ``coarse_up``, no gradient, not tracing), else out of place (one copy of coarse_up: an
        in-place write through a permuted view is lost when the graph is traced for ONNX export)."""
        B, C, Hs, Ws = coarse_up.shape
        r, index = self.region_cells, self._index(Hs, Ws, fine.device)
        crops = index.gather((fine, context, coarse_up), (1, self.context_factor, 1), bi, ridx)
        delta = self.branches.on_crops(crops, r)
        if torch.is_grad_enabled():  # the straight-through gate: value 1, only its gradient matters
            delta = delta * gate.reshape(-1, 1, 1, 1)
        rows = (index.inner[ridx] + (bi * (Hs * Ws))[:, None]).reshape(-1)
        values = delta.permute(0, 2, 3, 1).reshape(-1, C)
        if inplace and coarse_up.is_contiguous(memory_format=torch.channels_last):
            coarse_up.permute(0, 2, 3, 1).view(-1, C).index_put_((rows,), values, accumulate=True)
            return coarse_up
        # regions never overlap, so an accumulate index_put adds each delta once
        out = coarse_up.permute(0, 2, 3, 1).reshape(-1, C).index_put((rows,), values, accumulate=True)
        return out.reshape(B, Hs, Ws, C).permute(0, 3, 1, 2)
