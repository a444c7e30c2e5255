"""Top-K activation and multi-scale refinement branches that run only on the selected regions.

Sparse path (inference and training): the K most important regions are gathered from the
zero-padded stride-8 features with the halo their receptive field needs (max dilation cells per
side), every branch runs a *valid* (unpadded) dilated 3x3 conv on its own sub-crop so that its
output is exactly the region (no FLOPs are spent on the halo), the branches are fused by a 1x1
conv, gated by the region's importance, and added back in place. FLOPs are ∝ K; only the gather
copies the halo. Dense path: the same branches with "same" padding over the whole map, masked.
Both compute identical numbers (tested to 1e-4).

Choices where the paper is silent (documented here, measured in docs/benchmarks.md):
- regions are squares of ``region_cells`` stride-8 cells (default 8 cells = 64x64 input px);
- K is a ratio of the region count, k = round(K * n) but at least 1 when K > 0;
- how the selector learns: (1) soft gating - the branch output is multiplied by the selected
  region's importance sigmoid(s), so the segmentation loss reaches the selector through the
  selected regions (straight-through style for the hard Top-K), and (2) an explicit hardness
  target: BCE between the region logit and the per-region error rate of the coarse head
  (see :func:`fornet_ros.losses.selector_loss`);
- the branches carry no BatchNorm, so crops and the dense map compute the same thing in both
  train and eval mode.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def num_selected(topk_ratio: float, num_regions: int) -> int:
    """Regions kept by the Top-K activation: round(K*n), at least 1 when K > 0, at most n."""
    if topk_ratio <= 0:
        return 0
    return min(num_regions, max(1, int(math.floor(topk_ratio * num_regions + 0.5))))


class MultiScaleBranches(nn.Module):
    """Parallel 3x3 convs with different dilations (receptive fields), fused by a 1x1 conv."""

    def __init__(self, channels: int, branch_channels: int, dilations: tuple[int, ...]):
        super().__init__()
        self.dilations = tuple(dilations)
        self.halo = max(self.dilations)
        self.branches = nn.ModuleList(
            nn.Conv2d(channels, branch_channels, 3, padding=0, dilation=d) for d in self.dilations)
        self.fuse = nn.Conv2d(branch_channels * len(self.dilations), channels, 1)

    def dense(self, x):
        outs = [F.relu(F.conv2d(x, b.weight, b.bias, padding=d, dilation=d))
                for b, d in zip(self.branches, self.dilations)]
        return self.fuse(torch.cat(outs, 1))

    def on_crops(self, crops, size: int):
        """crops: (N, C, size+2*halo, size+2*halo) -> (N, C, size, size), valid convs only."""
        h = self.halo
        outs = []
        for b, d in zip(self.branches, self.dilations):
            o = h - d  # each branch reads only the halo its own dilation needs
            outs.append(F.relu(b(crops[:, :, o:o + size + 2 * d, o:o + size + 2 * d])))
        return self.fuse(torch.cat(outs, 1))


class FocusRefiner(nn.Module):
    """Top-K region selection + multi-scale refinement of the selected regions only."""

    def __init__(self, channels: int, branch_channels: int, dilations, region_cells: int):
        super().__init__()
        self.branches = MultiScaleBranches(channels, branch_channels, dilations)
        self.region_cells = region_cells

    def forward(self, feats, importance, topk_ratio: float, mode: str = "auto"):
        """feats: (B, C, H, W), H and W multiples of region_cells; importance: (B, 1, Hr, Wr) in [0, 1].

        Returns (refined feats, selected mask (B, 1, Hr, Wr) float 0/1).
        mode: "sparse", "dense" or "auto" (dense when every region is selected).
        """
        if mode not in ("auto", "sparse", "dense"):
            raise ValueError(f"mode must be auto, sparse or dense, got {mode!r}")
        B, C, H, W = feats.shape
        R = self.region_cells
        Hr, Wr = H // R, W // R
        n = Hr * Wr
        k = num_selected(topk_ratio, n)
        scores = importance.reshape(B, n)
        if k == 0:
            return feats, torch.zeros_like(importance)
        idx = scores.topk(k, dim=1).indices  # (B, k)
        gate = scores.gather(1, idx)  # importance of each kept region: the soft gate
        selected = torch.zeros_like(scores).scatter_(1, idx, 1.0).reshape(B, 1, Hr, Wr)
        if mode == "dense" or (mode == "auto" and k == n):
            gmap = torch.zeros_like(scores).scatter(1, idx, gate).reshape(B, 1, Hr, Wr)
            gmap = gmap.repeat_interleave(R, 2).repeat_interleave(R, 3)
            return feats + self.branches.dense(feats) * gmap, selected
        return self._sparse(feats, idx, gate, Wr), selected

    def _sparse(self, feats, idx, gate, Wr: int):
        B, C, H, W = feats.shape
        R, h = self.region_cells, self.branches.halo
        k = idx.shape[1]
        bi = torch.arange(B, device=feats.device).repeat_interleave(k)
        ry, rx = (idx // Wr).reshape(-1), (idx % Wr).reshape(-1)
        # Gather N = B*k crops of (R + 2h)^2 cells with advanced indexing on the NHWC view:
        # one copy proportional to K (torch has no batched crop op; unfold would copy every region).
        ar = torch.arange(R + 2 * h, device=feats.device)
        rows, cols = ry[:, None] * R + ar, rx[:, None] * R + ar
        padded = F.pad(feats, (h, h, h, h)).permute(0, 2, 3, 1)
        crops = padded[bi[:, None, None], rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        delta = self.branches.on_crops(crops, R) * gate.reshape(-1, 1, 1, 1)
        # Scatter back: regions never overlap, so an accumulate index_put adds each delta once.
        ar = ar[:R]
        rows, cols = ry[:, None] * R + ar, rx[:, None] * R + ar
        out = feats.clone()
        out.permute(0, 2, 3, 1).index_put_(
            (bi[:, None, None], rows[:, :, None], cols[:, None, :]), delta.permute(0, 2, 3, 1), accumulate=True)
        return out
