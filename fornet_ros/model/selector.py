"""Selector: predicts a region-wise importance map (logits) from stride-8 features."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class Selector(nn.Module):
    """Two convs to one logit per feature cell, averaged over each region of ``region_cells``².

    The input is already zero-padded to a multiple of the region size, so the region grid is
    exact; padded cells pull edge regions' logits toward the bias (documented, harmless).
    """

    def __init__(self, channels: int, region_cells: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, 1, 1))
        self.region_cells = region_cells

    def forward(self, feats):
        return F.avg_pool2d(self.net(feats), self.region_cells)  # (B, 1, Hr, Wr) logits
