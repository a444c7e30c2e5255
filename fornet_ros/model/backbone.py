"""Light backbone: a plain dense-conv stem to stride 8, a stride-16 context branch fused back.

Output: stride-8 features with ``channels[2]`` channels. Chosen for this CPU (dense 3x3 convs,
channels_last friendly, no depthwise); the paper only says "a light backbone".
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .layers import BasicBlock, ConvBNReLU


class Backbone(nn.Module):
    def __init__(self, channels: tuple[int, int, int, int]):
        super().__init__()
        c2, c4, c8, c16 = channels
        self.stem = nn.Sequential(ConvBNReLU(3, c2, stride=2), ConvBNReLU(c2, c4, stride=2), ConvBNReLU(c4, c4))
        self.stage8 = nn.Sequential(ConvBNReLU(c4, c8, stride=2), BasicBlock(c8))
        self.stage16 = nn.Sequential(ConvBNReLU(c8, c16, stride=2), BasicBlock(c16))
        self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c16, c16, 1), nn.ReLU(inplace=True))
        self.lateral = ConvBNReLU(c16, c8, k=1, relu=False)
        self.out_channels = c8

    def forward(self, x):
        f8 = self.stage8(self.stem(x))
        f16 = self.stage16(f8)
        f16 = f16 + self.context(f16)
        up = F.interpolate(self.lateral(f16), size=f8.shape[-2:], mode="bilinear", align_corners=False)
        return F.relu(f8 + up)
