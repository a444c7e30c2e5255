"""The light backbone (``light``, trained from scratch): a plain dense-conv stem to stride 4, a stride-8
stage, a stride-16 context branch fused back into stride 8.

Outputs the stride-2, stride-4 and stride-8 features (``channels[0]``, ``channels[1]``,
``channels[2]`` channels): the stride-8 ones feed the cheap head and the selector, the stride-4
(or stride-2) ones are what the focus stage refines selected regions from. Dense 3x3 convs,
channels_last friendly, no depthwise (~25x less efficient per FLOP on this CPU: a 3x3 depthwise conv
reached 7 GFLOP/s, a dense 3x3 conv 174, channels_last, 2 threads);
the paper only says "a light backbone".
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .layers import BasicBlock, ConvNormAct


class LightBackbone(nn.Module):
    def __init__(self, channels: tuple[int, int, int, int]):
        super().__init__()
        c2, c4, c8, c16 = channels
        self.stem2 = ConvNormAct(3, c2, 3, stride=2)
        self.stem4 = nn.Sequential(ConvNormAct(c2, c4, 3, stride=2), ConvNormAct(c4, c4, 3))
        self.stage8 = nn.Sequential(ConvNormAct(c4, c8, 3, stride=2), BasicBlock(c8))
        self.stage16 = nn.Sequential(ConvNormAct(c8, c16, 3, stride=2), BasicBlock(c16))
        self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c16, c16, 1), nn.ReLU(inplace=True))
        self.lateral = ConvNormAct(c16, c8, 1, act_layer=None)
        self.out_channels = (c2, c4, c8)

    def forward(self, x):
        """x (B, 3, H, W), H and W multiples of 16 -> (f2, f4, f8)."""
        f2 = self.stem2(x)
        f4 = self.stem4(f2)
        f8 = self.stage8(f4)
        f16 = self.stage16(f8)
        f16 = f16 + self.context(f16)
        up = F.interpolate(self.lateral(f16), size=f8.shape[-2:], mode="bilinear", align_corners=False)
        return f2, f4, F.relu(f8 + up)
