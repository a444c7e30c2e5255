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

from .layers import zero_input_channels


class Selector(nn.Module):
    def __init__(self, channels: int, num_classes: int, region_cells: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels + num_classes, hidden, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, 1, 1))
        self.region_cells = region_cells
        self.zero_channels = 0  # all-zero input channels appended at inference (:meth:`pad_input`)

    @torch.no_grad()
    def pad_input(self, multiple: int = 16) -> int:
        """Inference only: append all-zero input channels (zero weights) up to a multiple of
        ``multiple``: the same output, a conv ONNX Runtime runs in its blocked layout
        (:meth:`FoRNet.pad_focus_channels`). Returns the channels added."""
        conv = self.net[0]
        extra = (-conv.in_channels) % multiple
        if extra:
            zero_input_channels(conv, conv.in_channels, extra)
            self.zero_channels += extra
        return extra

    def forward(self, f8, coarse_logits):
        parts = [f8, coarse_logits.detach().softmax(1)]
        if self.zero_channels:
            parts.append(f8.new_zeros(f8.shape[0], self.zero_channels, *f8.shape[2:]))
        x = torch.cat(parts, 1)
        return F.avg_pool2d(self.net(x), self.region_cells)  # (B, 1, Hr, Wr) logits
