"""FoR-Net: backbone -> selector -> Top-K activation -> multi-scale branches on the selected
regions -> segmentation head (arXiv 2605.02764; the paper gives no code, choices are documented
in :mod:`fornet_ros.model.focus`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .backbone import Backbone
from .focus import FocusRefiner
from .layers import ConvBNReLU
from .selector import Selector


class FoRNet(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.topk_ratio = cfg.topk_ratio  # run-time setting, may differ from the trained one
        self.backbone = Backbone(cfg.channels)
        c = self.backbone.out_channels
        self.coarse_head = nn.Conv2d(c, cfg.num_classes, 1)  # aux loss + hardness target
        if cfg.focus:
            self.selector = Selector(c, cfg.region_cells)
            self.refiner = FocusRefiner(c, cfg.branch_channels, cfg.dilations, cfg.region_cells)
        self.head = nn.Sequential(ConvBNReLU(c, cfg.head_channels), nn.Conv2d(cfg.head_channels, cfg.num_classes, 1))

    def forward(self, x, topk_ratio: float | None = None, mode: str = "auto", with_coarse: bool = False):
        """x: (B, 3, H, W) normalised image.

        Returns a dict: ``logits`` (B, classes, ceil(H/8), ceil(W/8)) stride-8 logits;
        ``importance`` (B, 1, Hr, Wr) region importance in [0, 1] (zeros with focus off);
        ``selector_logits`` and ``selected`` on the region grid; ``coarse`` (stride-8 logits of
        the coarse head) when training or ``with_coarse``.
        """
        K = self.topk_ratio if topk_ratio is None else float(topk_ratio)
        feats = self.backbone(x)
        fh, fw = feats.shape[-2:]
        out = {}
        if self.training or with_coarse:
            out["coarse"] = self.coarse_head(feats)
        R = self.cfg.region_cells
        ph, pw = (-fh) % R, (-fw) % R
        if self.cfg.focus:
            padded = F.pad(feats, (0, pw, 0, ph))
            sel_logits = self.selector(padded)
            importance = torch.sigmoid(sel_logits)
            refined, selected = self.refiner(padded, importance, K, mode)
            feats = refined[:, :, :fh, :fw]
        else:
            shape = (feats.shape[0], 1, (fh + ph) // R, (fw + pw) // R)
            sel_logits = feats.new_zeros(shape)
            importance = selected = feats.new_zeros(shape)
        out.update(logits=self.head(feats), importance=importance, selector_logits=sel_logits, selected=selected)
        return out


def region_map_to_pixels(region_map, region_cells: int, feat_size: tuple[int, int], size: tuple[int, int]):
    """Expand a (B, C, Hr, Wr) region map to an image of ``size`` whose stride-8 feature map
    was ``feat_size`` (each region is an exact block of region_cells² feature cells)."""
    R = region_cells
    cells = region_map.repeat_interleave(R, 2).repeat_interleave(R, 3)[:, :, :feat_size[0], :feat_size[1]]
    return F.interpolate(cells, size=size, mode="nearest")
