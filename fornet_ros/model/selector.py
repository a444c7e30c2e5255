"""Selector: predicts region importance (logits) from the stride-8 features and the cheap head's
own prediction.

The stride-8 logits go in (detached) because where a prediction is wrong correlates with where it
is uncertain (PointRend's top-2 margin); the features add what the logits cannot show (texture,
thin structures the head has already missed). One logit per stride-8 cell, averaged over each
region's cells (regions are exact blocks of cells: the model pads its input to whole regions).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Selector(nn.Module):
    def __init__(self, channels: int, num_classes: int, region_cells: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels + num_classes, hidden, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, 1, 1))
        self.region_cells = region_cells

    def forward(self, f8, coarse_logits):
        x = torch.cat([f8, coarse_logits.detach().softmax(1)], 1)
        return F.avg_pool2d(self.net(x), self.region_cells)  # (B, 1, Hr, Wr) logits
