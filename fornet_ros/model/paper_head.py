"""The FoR-Net head as its authors published it (github.com/henrychan0719/FoR-Net, ``fornet/model.py``,
MIT; written anew here from the paper's equations and that file), and the same head without its focus
(``plain``) as the ablation baseline.

Followed as published:
- stride-8 features projected to the head's width by a 1x1 conv-BN-ReLU (the authors: 2048 -> 256);
- selector phi: 3x3 conv-BN-ReLU to half the width, 1x1 to one logit, computed in fp32 (ties under AMP);
- **nested Top-K masks** over the stride-8 positions, ratios 0.1 / 0.2 / 0.3 / 0.4 of them, exactly
  round(r * n) (at least 1) per image, built from one sorted TopK so that they nest;
- global context F_ctx = F + psi(GAP(F)) (psi: 1x1 to a quarter, ReLU, 1x1 back);
- four branches conv-BN-ReLU with kernels 1 / 3 / 5 / 7, branch i applied to ``F_ctx * mask_i`` and
  all added to F; the hard mask in the forward pass with a straight-through gradient to
  S = sigmoid(phi) (``mask + S - S.detach()``);
- decoder: 1x1 conv-BN-ReLU of the stride-4 features to 48 channels, concatenated with the upsampled
  aggregate, 3x3 conv-BN-ReLU, 1x1 classifier (logits at stride 4).
The masks gate *which features each branch sees*; every convolution still runs over the whole map:
this head does not reduce compute (our ``sparse`` head, :mod:`fornet_ros.model.focus`, does).

Departures (each a constructor argument, so the published values are one config away):
- width: ``PaperHeadConfig.channels`` (96 for the mobile backbones) instead of 256 — the authors' width on
  a dilated ResNet-101; the selector's hidden width is half of it, as theirs;
- the 7x7 branch's dilation: the authors' 16 spans +-48 cells, made for a 128x256 stride-8 map of a
  1024x2048 Cityscapes image; on CamVid's 360x480 (a 45x60 map) almost all of it reads zero padding.
  ``PaperHeadConfig.dilations`` sets it; our CamVid models use 6 (16 scaled by the map size, 45/128);
- K: one ratio ``topk_ratio`` = the largest mask's ratio (the authors' 0.4); the four ratios are
  K/4, 2K/4, 3K/4, K, so K = 0.4 is exactly the paper, and the node's K control scales all four;
- one 3x3 decoder conv instead of two (the stride-4 map is the costliest part on a CPU);
- a 1x1 classifier on the stride-8 projection gives ``coarse`` logits for an auxiliary loss
  (training only uses it; the authors have no auxiliary loss);
- the selector's input is the projection F itself, as theirs (our sparse head also feeds it the coarse
  prediction);
- the stride-8 features: every pretrained backbone (ResNet-101 included) goes through the
  :class:`~fornet_ros.model.encoders.Neck` (stride-8/16/32 taps fused, an LR-ASPP global gate), so the
  projection is neck width -> head width; the authors project ResNet-101's layer4 (2048) directly;
- the loss (:func:`fornet_ros.training.losses.fornet_loss`): OHEM cross-entropy (the recipe of every model this
  package trains) where the authors use plain mean CE; Dice 1 and selector BCE 0.5 as theirs, plus the
  0.4 auxiliary CE above; the trainer's ``--dice`` defaults to 1 for the paper and plain heads.
Not handled: training crops padded with ignore labels (scale < 1) may spend Top-K on those cells (no
loss reaches them), and inference pads the input to a multiple of 32 with zeros that the global
averages (psi, the neck's gate) include.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import AUTHORS_PAPER_DILATIONS
from .focus import num_selected
from .layers import ConvNormAct


def nested_topk_masks(scores, ratios, valid=None):
    """(B, 1, H, W) scores -> one (B, 1, H, W) 0/1 mask per ratio; each keeps the round(r * n) (at
    least 1) highest scores of its image, and a smaller ratio's mask lies inside a larger one's.
    ``valid`` (h, w): only the top-left h x w cells count (the rest is the backbone's zero padding):
    n = h * w and padding cells are never selected."""
    B, _, H, W = scores.shape
    flat = scores.detach().float()
    n = H * W
    if valid is not None and tuple(valid) != (H, W):
        h, w = valid
        n = h * w
        ar_h, ar_w = torch.arange(H, device=flat.device), torch.arange(W, device=flat.device)
        flat = flat.masked_fill((ar_h >= h)[:, None] | (ar_w >= w)[None, :], float("-inf"))
    ks = [num_selected(r, n) for r in ratios]
    flat = flat.reshape(B, H * W)
    order = flat.topk(max(ks), dim=1, sorted=True).indices
    masks = []
    for k in ks:
        m = flat.new_zeros(B, H * W)
        if k:
            m = m.scatter(1, order[:, :k], 1.0)
        masks.append(m.reshape(B, 1, H, W))
    return masks


class PaperSelector(nn.Sequential):
    """phi: a 3x3 conv-BN-ReLU to half the width (``hidden``), a 1x1 conv to one logit (``logit``). A
    ``Sequential`` so that its weights keep their keys (``selector.0.*``, ``selector.1.*``)."""

    def __init__(self, channels: int):
        super().__init__(ConvNormAct(channels, channels // 2, 3), nn.Conv2d(channels // 2, 1, 1))

    hidden = property(lambda self: self[0])
    logit = property(lambda self: self[1])


class Decoder(nn.Module):
    """Stride-8 aggregate + stride-4 features -> stride-4 logits (DeepLabv3+-style, as the paper's Eq. 7)."""

    def __init__(self, channels: int, low_in: int, num_classes: int, low_channels: int = 48):
        super().__init__()
        self.low_proj = ConvNormAct(low_in, low_channels, 1)
        self.fuse = ConvNormAct(channels + low_channels, channels, 3)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, f8, f4):
        low = self.low_proj(f4)
        y = F.interpolate(f8, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.fuse(torch.cat([y, low], 1)))


class PaperHead(nn.Module):
    """FoR-Net's head (``focus=True``) or the plain decoder head (``focus=False``) on (f4, f8)."""

    KERNELS = (1, 3, 5, 7)

    def __init__(self, c4: int, c8: int, num_classes: int, channels: int, dilations=AUTHORS_PAPER_DILATIONS,
                 focus: bool = True):
        """``dilations``: of the four branches (``focus``); the plain head (``focus=False``) has none."""
        super().__init__()
        self.focus = focus
        self.trans = ConvNormAct(c8, channels, 1)
        self.aux = nn.Conv2d(channels, num_classes, 1)
        if focus:
            self.selector = PaperSelector(channels)
            self.psi = nn.Sequential(nn.Conv2d(channels, channels // 4, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(channels // 4, channels, 1))
            self.branches = nn.ModuleList(ConvNormAct(channels, channels, k, dilation=d)
                                          for k, d in zip(self.KERNELS, dilations))
        self.decoder = Decoder(channels, c4, num_classes)

    def forward(self, f4, f8, topk_ratio: float, valid=None):
        """-> (stride-4 logits, stride-8 coarse logits, selector logits or None, largest mask or None).
        ``valid``: the (h, w) stride-8 cells that cover the image (the rest is padding: never selected)."""
        f = self.trans(f8)
        coarse = self.aux(f)
        if not self.focus:
            return self.decoder(f, f4), coarse, None, None
        h, head = self.selector.hidden(f), self.selector.logit
        with torch.autocast(device_type=f.device.type, enabled=False):  # fp32 logit: Top-K sees no fp16 ties
            sel = F.conv2d(h.float(), head.weight.float(), head.bias.float())  # also in a .half() model
        s = torch.sigmoid(sel)
        K = float(topk_ratio)
        masks = nested_topk_masks(sel, [K * (i + 1) / len(self.branches) for i in range(len(self.branches))], valid)
        ctx = f + self.psi(F.adaptive_avg_pool2d(f, 1))
        agg = f
        for branch, m in zip(self.branches, masks):
            agg = agg + branch(ctx * (m + (s - s.detach())).to(ctx.dtype))  # exactly the hard mask; gradient to S
        return self.decoder(agg, f4), coarse, sel, masks[-1]
