"""FoR-Net: a registered backbone (:mod:`fornet_ros.model.encoders`) and one of three heads:

- ``sparse`` (this package's): cheap stride-8 head -> selector -> Top-K regions -> multi-scale branches
  refining only the selected regions at stride 4 (or 2); compute ∝ K (:mod:`fornet_ros.model.focus`);
- ``paper`` (the authors'): nested Top-K masks gating four multi-scale branches at stride 8, then a
  stride-4 decoder (:mod:`fornet_ros.model.paper_head`);
- ``plain``: the paper head without selector and branches (the focus-off baseline of pretrained models).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .encoders import PAD_MULTIPLE, build_backbone
from .focus import AdaptiveK, FocusRefiner
from .layers import ConvNormAct
from .paper_head import PaperHead
from .selector import Selector


class FoRNet(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.topk_ratio = cfg.topk_ratio  # run-time setting, may differ from the trained one
        self.backbone = build_backbone(cfg)
        c2, c4, c8 = self.backbone.out_channels
        self.pad_multiple = max(cfg.region_px, PAD_MULTIPLE[cfg.backbone])
        head = cfg.head_cfg
        if cfg.head != "sparse":
            self.paper = PaperHead(c4, c8, cfg.num_classes, head.channels, getattr(head, "dilations", None), head.focus)
            return
        self.head = nn.Sequential(ConvNormAct(c8, head.channels, 3), nn.Conv2d(head.channels, cfg.num_classes, 1))
        if head.focus:
            s = head.refine_stride
            self.selector = Selector(c8, cfg.num_classes, head.region_px // 8)
            self.context = nn.Sequential(nn.Conv2d(c8, head.branch_channels, 1), nn.ReLU(inplace=True))
            self.refiner = FocusRefiner(c4 if s == 4 else c2, head.branch_channels, cfg.num_classes,
                                        head.branch_channels, head.refine_channels, head.dilations,
                                        head.region_px // s, 8 // s)

    def _features(self, x):
        """Backbone features (f2, f4, f8) of ``x`` zero-padded (bottom, right) to ``pad_multiple``."""
        P = self.pad_multiple
        pad = (0, (-x.shape[-1]) % P, 0, (-x.shape[-2]) % P)
        # a zero pad is still a copy of the frame (a Pad node in the export: 1.3 ms at 512x1024)
        return self.backbone(F.pad(x, pad) if any(pad) else x)

    @property
    def output_stride(self) -> int:
        """Stride of ``logits``: 4 for the paper and plain heads, the refine stride for the sparse
        head with focus, 8 for the focus-off stride-8 head."""
        if self.cfg.head != "sparse":
            return 4
        return self.cfg.refine_stride if self.cfg.focus else 8

    @torch.no_grad()
    def pad_focus_channels(self, multiple: int = 16) -> int:
        """Inference only, in place: give the focus stage's two widest-input convs a multiple of
        ``multiple`` input channels, with the same outputs. The refiner's branch input (fine,
        context, coarse_up) gets all-zero context channels (the context projection widened with
        zero filters, which ReLU keeps 0; the branch convs take zero weights there); the selector's
        input (stride-8 features, class probabilities) gets appended zero channels. Why: ONNX
        Runtime's CPU convs run in its blocked NCHWc layout only when the input channels are a
        multiple of the SIMD block (16 with AVX-512); the default's 75 (24 + 32 + 19) sent its three
        stride-4 branch convs to the generic path, 9.7 ms each at 512x1024 against 6.7 ms blocked
        (docs/benchmarks.md). The export applies it (:func:`~fornet_ros.inference.export.export_onnx`);
        torch's own convs gained nothing from it and run the model as trained.
        Returns the channels added (0: nothing to do)."""
        if self.cfg.head != "sparse" or not self.cfg.focus:
            return 0
        extra = (-self.refiner.branches.branches[0].in_channels) % multiple
        if extra:
            conv = self.context[0]
            wider = nn.Conv2d(conv.in_channels, conv.out_channels + extra, 1).to(conv.weight)
            wider.weight.copy_(torch.cat([conv.weight, conv.weight.new_zeros(extra, *conv.weight.shape[1:])]))
            wider.bias.copy_(torch.cat([conv.bias, conv.bias.new_zeros(extra)]))
            self.context[0] = wider.requires_grad_(False)
            self.refiner.widen_context(extra)
        return extra + self.selector.pad_input(multiple)

    def focus_inputs(self, x):
        """Everything before the focus stage, on the input zero-padded to whole regions:
        (coarse stride-8 logits, selector logits, refiner inputs (fine, context, coarse_up, importance)).
        The sparse head only (the paper head's masks gate features inside its head)."""
        if self.cfg.head != "sparse":
            raise ValueError(f"focus_inputs is the sparse head's; this model has the {self.cfg.head} head")
        f2, f4, f8 = self._features(x)
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
        if self.cfg.head != "sparse":
            return self._paper_forward(x, K)
        coarse, sel_logits, inputs = self.focus_inputs(x)
        out = {"coarse": coarse[:, :, :-(-H // 8), :-(-W // 8)]}
        if inputs is None:
            P = self.cfg.region_px
            zeros = coarse.new_zeros((x.shape[0], 1, -(-H // P), -(-W // P)))
            out.update(logits=out["coarse"], importance=zeros, selector_logits=zeros, selected=zeros)
            return out
        logits, selected = self.refiner(*inputs, K, mode, inplace=True)  # coarse_up is this call's own
        s = self.cfg.refine_stride
        out.update(logits=logits[:, :, :-(-H // s), :-(-W // s)], importance=inputs[3],
                   selector_logits=sel_logits, selected=selected)
        return out


    def _paper_forward(self, x, K):
        """The paper / plain head: same output dict, regions = stride-8 cells (``region_px`` 8)."""
        H, W = x.shape[-2:]
        f2, f4, f8 = self._features(x)
        if isinstance(K, AdaptiveK):
            raise ValueError("the paper head takes a fixed K (its four nested ratios scale with it)")
        h8, w8 = -(-H // 8), -(-W // 8)
        logits, coarse, sel, mask = self.paper(f4, f8, K, (h8, w8))
        out = {"logits": logits[:, :, :-(-H // 4), :-(-W // 4)], "coarse": coarse[:, :, :h8, :w8]}
        if sel is None:
            zeros = coarse.new_zeros((x.shape[0], 1, h8, w8))
            out.update(importance=zeros, selector_logits=zeros, selected=zeros)
        else:
            out.update(importance=torch.sigmoid(sel)[:, :, :h8, :w8], selector_logits=sel[:, :, :h8, :w8],
                       selected=mask[:, :, :h8, :w8])
        return out
