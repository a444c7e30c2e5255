"""Small building blocks shared by the backbones and the heads."""

from __future__ import annotations

import torch
from torch import nn

BN_EPS_DEFAULT = 1e-5  # torch's BatchNorm eps
BN_EPS_TF_DEFAULT = 1e-3  # TensorFlow's (timm's name): weights converted from TF expect it


class ConvNormAct(nn.Sequential):
    """Conv (no bias, "same" padding) -> BatchNorm -> activation, the one conv-BN-activation block of
    the package (timm's ``ConvNormAct``, keyword arguments past the kernel size). A ``Sequential`` of
    ``0`` conv, ``1`` BN, ``2`` activation, so state-dict keys are ``0.weight``, ``1.running_mean``, ...
    (the layout the packaged checkpoints and torchvision's MobileNetV2 file use); ``act_layer=None``
    ends at the BN."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, *, stride: int = 1,
                 dilation: int = 1, groups: int = 1, act_layer=nn.ReLU, eps: float = BN_EPS_DEFAULT):
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, dilation * (kernel_size // 2),
                            dilation=dilation, groups=groups, bias=False), nn.BatchNorm2d(out_channels, eps=eps)]
        if act_layer is not None:
            layers.append(act_layer(inplace=True))
        super().__init__(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block (two dense 3x3 convs). Dense 3x3 convs, not depthwise ones: on this
    CPU depthwise convs run ~25x less efficiently per FLOP (measured on the project's 2-core CPU: a 3x3 depthwise conv reached 7 GFLOP/s, a dense 3x3 conv 174)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvNormAct(channels, channels, 3)
        self.conv2 = ConvNormAct(channels, channels, 3, act_layer=None)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(x + self.conv2(self.conv1(x)))


@torch.no_grad()
def zero_input_channels(conv: nn.Conv2d, at: int, extra: int) -> None:
    """Inference only, in place: ``conv`` takes ``extra`` more input channels, inserted at ``at``,
    with zero weights, so its output stays the same for any values there (the focus convs padded
    to ONNX Runtime's SIMD blocks, :meth:`~fornet_ros.model.fornet.FoRNet.pad_focus_channels`)."""
    w = conv.weight
    conv.weight = nn.Parameter(torch.cat([w[:, :at], w.new_zeros(w.shape[0], extra, *w.shape[2:]), w[:, at:]], 1),
                               requires_grad=False)
    conv.in_channels += extra
