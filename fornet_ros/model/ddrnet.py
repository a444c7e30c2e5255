"""DDRNet-23-slim (Hong et al., "Deep Dual-resolution Networks for Real-time and Accurate Semantic
Segmentation of Road Scenes", 2021): the usual real-time baseline, rebuilt from the paper's
architecture table (basic-block widths 32/64/128/256, a stride-8 high-resolution branch of width
64 with two bilateral fusions, a Bottleneck stage at stride 64, DAPPM with 128-wide branches, a
64-wide segmentation head; ~5.7 M parameters with 19 classes). The auxiliary head on the
high-resolution branch after the first fusion (the paper's deep supervision, weight 0.4) is
returned as ``coarse`` while training, so the same trainer and loss serve it.

Same output contract as :class:`~fornet_ros.model.fornet.FoRNet` (stride-8 ``logits``; zero
``importance``/``selected`` maps on the ``region_px`` grid): no focus stage.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig


def _bn(c):
    return nn.BatchNorm2d(c)


def _conv3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


def _conv1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, downsample=None, no_relu=False):
        super().__init__()
        self.conv1, self.bn1 = _conv3(cin, planes, stride), _bn(planes)
        self.conv2, self.bn2 = _conv3(planes, planes), _bn(planes)
        self.downsample, self.no_relu = downsample, no_relu

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        out = out + (x if self.downsample is None else self.downsample(x))
        return out if self.no_relu else F.relu(out)


class Bottleneck(nn.Module):
    expansion = 2

    def __init__(self, cin, planes, stride=1, downsample=None, no_relu=True):
        super().__init__()
        self.conv1, self.bn1 = _conv1(cin, planes), _bn(planes)
        self.conv2, self.bn2 = _conv3(planes, planes, stride), _bn(planes)
        self.conv3, self.bn3 = _conv1(planes, planes * 2), _bn(planes * 2)
        self.downsample, self.no_relu = downsample, no_relu

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out)) + (x if self.downsample is None else self.downsample(x))
        return out if self.no_relu else F.relu(out)


def _layer(block, cin, planes, blocks, stride=1):
    down = None
    if stride != 1 or cin != planes * block.expansion:
        down = nn.Sequential(_conv1(cin, planes * block.expansion, stride), _bn(planes * block.expansion))
    layers = [block(cin, planes, stride, down)]
    for i in range(1, blocks):
        layers.append(block(planes * block.expansion, planes, 1, no_relu=i == blocks - 1))
    return nn.Sequential(*layers)


def _bn_relu_conv(cin, cout, k=1):
    return nn.Sequential(_bn(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, k, padding=k // 2, bias=False))


class DAPPM(nn.Module):
    """Deep Aggregation Pyramid Pooling Module: average pools at 1/2, 1/4, 1/8 and global,
    each added to the previous scale's output before its 3x3 conv, concatenated, compressed."""

    def __init__(self, cin, branch, cout):
        super().__init__()
        pools = [nn.AvgPool2d(5, 2, 2), nn.AvgPool2d(9, 4, 4), nn.AvgPool2d(17, 8, 8), nn.AdaptiveAvgPool2d(1)]
        self.scales = nn.ModuleList(nn.Sequential(p, _bn_relu_conv(cin, branch)) for p in pools)
        self.scale0 = _bn_relu_conv(cin, branch)
        self.process = nn.ModuleList(_bn_relu_conv(branch, branch, 3) for _ in pools)
        self.compression = _bn_relu_conv(branch * 5, cout)
        self.shortcut = _bn_relu_conv(cin, cout)

    def forward(self, x):
        size = x.shape[-2:]
        outs = [self.scale0(x)]
        for scale, process in zip(self.scales, self.process):
            up = F.interpolate(scale(x), size=size, mode="bilinear", align_corners=False)
            outs.append(process(up + outs[-1]))
        return self.compression(torch.cat(outs, 1)) + self.shortcut(x)


class SegHead(nn.Sequential):
    def __init__(self, cin, mid, classes):
        super().__init__(_bn(cin), nn.ReLU(inplace=True), _conv3(cin, mid), _bn(mid), nn.ReLU(inplace=True),
                         nn.Conv2d(mid, classes, 1))


class DDRNet(nn.Module):
    def __init__(self, cfg: ModelConfig, planes: int = 32, spp_planes: int = 128, head_planes: int = 64,
                 layers=(2, 2, 2, 2)):
        super().__init__()
        self.cfg = cfg
        self.topk_ratio = 0.0
        hi = planes * 2
        self.conv1 = nn.Sequential(_conv3(3, planes, 2), _bn(planes), nn.ReLU(inplace=True),
                                   _conv3(planes, planes, 2), _bn(planes), nn.ReLU(inplace=True))
        self.layer1 = _layer(BasicBlock, planes, planes, layers[0])
        self.layer2 = _layer(BasicBlock, planes, planes * 2, layers[1], 2)
        self.layer3 = _layer(BasicBlock, planes * 2, planes * 4, layers[2], 2)
        self.layer4 = _layer(BasicBlock, planes * 4, planes * 8, layers[3], 2)
        self.compression3 = nn.Sequential(_conv1(planes * 4, hi), _bn(hi))
        self.compression4 = nn.Sequential(_conv1(planes * 8, hi), _bn(hi))
        self.down3 = nn.Sequential(_conv3(hi, planes * 4, 2), _bn(planes * 4))
        self.down4 = nn.Sequential(_conv3(hi, planes * 4, 2), _bn(planes * 4), nn.ReLU(inplace=True),
                                   _conv3(planes * 4, planes * 8, 2), _bn(planes * 8))
        self.layer3_ = _layer(BasicBlock, planes * 2, hi, 2)
        self.layer4_ = _layer(BasicBlock, hi, hi, 2)
        self.layer5_ = _layer(Bottleneck, hi, hi, 1)
        self.layer5 = _layer(Bottleneck, planes * 8, planes * 8, 1, 2)
        self.spp = DAPPM(planes * 16, spp_planes, planes * 4)
        self.aux_head = SegHead(hi, head_planes, cfg.num_classes)
        self.final_layer = SegHead(planes * 4, head_planes, cfg.num_classes)

    output_stride = 8

    def forward(self, x, topk_ratio: float | None = None, mode: str = "auto"):
        if mode not in ("auto", "sparse", "dense"):
            raise ValueError(f"mode must be auto, sparse or dense, got {mode!r}")
        H, W = x.shape[-2:]
        l1 = self.layer1(self.conv1(x))
        l2 = self.layer2(F.relu(l1))  # stride 8
        size = l2.shape[-2:]
        l3 = self.layer3(F.relu(l2))  # stride 16
        hi = self.layer3_(F.relu(l2))
        lo = l3 + self.down3(F.relu(hi))
        hi = hi + F.interpolate(self.compression3(F.relu(l3)), size=size, mode="bilinear", align_corners=False)
        aux = hi
        l4 = self.layer4(F.relu(lo))  # stride 32
        hi = self.layer4_(F.relu(hi))
        lo = l4 + self.down4(F.relu(hi))
        hi = hi + F.interpolate(self.compression4(F.relu(l4)), size=size, mode="bilinear", align_corners=False)
        hi = self.layer5_(F.relu(hi))
        lo = F.interpolate(self.spp(self.layer5(F.relu(lo))), size=size, mode="bilinear", align_corners=False)
        logits = self.final_layer(lo + hi)
        P = self.cfg.region_px
        zeros = logits.new_zeros((x.shape[0], 1, -(-H // P), -(-W // P)))
        out = {"logits": logits, "importance": zeros, "selector_logits": zeros, "selected": zeros}
        if self.training:
            out["coarse"] = self.aux_head(aux)
        return out
