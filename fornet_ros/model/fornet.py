"""FoR-Net: backbone -> cheap stride-8 head -> selector -> Top-K activation -> multi-scale branches
refining the selected regions at stride 4 (or 2) -> logits (arXiv 2605.02764; the paper gives no
code, choices are documented in :mod:`fornet_ros.model.focus`)."""

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
        c2, c4, c8 = self.backbone.out_channels
        self.head = nn.Sequential(ConvBNReLU(c8, cfg.head_channels), nn.Conv2d(cfg.head_channels, cfg.num_classes, 1))
        if cfg.focus:
            s = cfg.refine_stride
            self.selector = Selector(c8, cfg.num_classes, cfg.region_px // 8)
            self.context = nn.Sequential(nn.Conv2d(c8, cfg.branch_channels, 1), nn.ReLU(inplace=True))
            self.refiner = FocusRefiner(c4 if s == 4 else c2, cfg.branch_channels, cfg.num_classes,
                                        cfg.branch_channels, cfg.refine_channels, cfg.dilations,
                                        cfg.region_px // s, 8 // s)

    def focus_inputs(self, x):
        """Everything before the focus stage, on the input zero-padded to whole regions:
        (coarse stride-8 logits, selector logits, refiner inputs (fine, context, coarse_up, importance))."""
        P = self.cfg.region_px
        x = F.pad(x, (0, (-x.shape[-1]) % P, 0, (-x.shape[-2]) % P))
        f2, f4, f8 = self.backbone(x)
        coarse = self.head(f8)
        if not self.cfg.focus:
            return coarse, None, None
        sel_logits = self.selector(f8, coarse)
        s = self.cfg.refine_stride
        coarse_up = F.interpolate(coarse, scale_factor=8 // s, mode="bilinear", align_corners=False)
        return coarse, sel_logits, (f4 if s == 4 else f2, self.context(f8), coarse_up, torch.sigmoid(sel_logits))

    def forward(self, x, topk_ratio=None, mode: str = "auto"):
        """x: (B, 3, H, W) normalised image, any size; topk_ratio: a float K, an
        :class:`~fornet_ros.model.focus.AdaptiveK`, or None (the configured K).

        Returns a dict: ``logits`` at the refine stride (B, classes, ceil(H/s), ceil(W/s)) — at
        stride 8 with focus off; ``coarse`` the cheap head's stride-8 logits (B, classes,
        ceil(H/8), ceil(W/8)); ``importance`` (B, 1, Hr, Wr) region importance in [0, 1] (zeros
        with focus off), ``selector_logits`` and ``selected`` on the same region grid, which
        covers the input padded to whole regions of ``cfg.region_px``.
        """
        if mode not in ("auto", "sparse", "dense"):
            raise ValueError(f"mode must be auto, sparse or dense, got {mode!r}")
        K = self.topk_ratio if topk_ratio is None else topk_ratio
        H, W = x.shape[-2:]
        coarse, sel_logits, inputs = self.focus_inputs(x)
        out = {"coarse": coarse[:, :, :-(-H // 8), :-(-W // 8)]}
        if inputs is None:
            P = self.cfg.region_px
            zeros = coarse.new_zeros((x.shape[0], 1, -(-H // P), -(-W // P)))
            out.update(logits=out["coarse"], importance=zeros, selector_logits=zeros, selected=zeros)
            return out
        logits, selected = self.refiner(*inputs, K, mode)
        s = self.cfg.refine_stride
        out.update(logits=logits[:, :, :-(-H // s), :-(-W // s)], importance=inputs[3],
                   selector_logits=sel_logits, selected=selected)
        return out

