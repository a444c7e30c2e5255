"""Named model variants, built by one function (plain dict lookup, no global side effects).

``fornet_s`` is :class:`~fornet_ros.config.ModelConfig`'s defaults exactly; ``ddrnet23_slim`` is
the baseline every accuracy and speed claim is compared with (same trainer, same evaluation)."""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from ..config import AUTHORS_PAPER_DILATIONS, PAPER_TOPK, ModelConfig
from .ddrnet import DDRNet
from .fornet import FoRNet

# The authors' widest dilation was made for a 128-row stride-8 map (1024-row Cityscapes crops); CamVid's
# 360-row frames give 45 rows: scaled, 16 * 45 / 128 = 5.6 -> 6 (model/paper_head.py).
CAMVID_PAPER_DILATIONS = (*AUTHORS_PAPER_DILATIONS[:3], round(AUTHORS_PAPER_DILATIONS[3] * 45 / 128))
_PAPER = dict(head="paper", region_px=8, topk_ratio=PAPER_TOPK, paper_dilations=CAMVID_PAPER_DILATIONS)
_PLAIN = dict(head="plain", region_px=8, topk_ratio=0.0, focus=False)
VARIANTS: dict[str, dict] = {
    "fornet_s": dict(),
    "fornet_m": dict(channels=(32, 64, 128, 192), head_channels=96, branch_channels=48, refine_channels=96),
    "ddrnet23_slim": dict(arch="ddrnet", focus=False, topk_ratio=0.0),
    # ImageNet-pretrainable backbones (model/pretrained.py) with the three heads
    "mnv2_paper": dict(backbone="mobilenet_v2", **_PAPER),
    "mnv2_sparse": dict(backbone="mobilenet_v2"),
    "mnv2_plain": dict(backbone="mobilenet_v2", **_PLAIN),
    "lite0_paper": dict(backbone="efficientnet_lite0", **_PAPER),
    "lite0_sparse": dict(backbone="efficientnet_lite0"),
    "lite0_plain": dict(backbone="efficientnet_lite0", **_PLAIN),
    # the authors' configuration: dilated ResNet-101, 256-wide head, dilation 16, K = 0.4 (bring the weights)
    "r101_paper": dict(backbone="resnet101", head="paper", region_px=8, topk_ratio=PAPER_TOPK, neck_channels=256),
}


def variant_config(variant: str, num_classes: int = 19, topk_ratio: float | None = None, **overrides) -> ModelConfig:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    cfg = ModelConfig(variant=variant, num_classes=num_classes, **VARIANTS[variant])
    if topk_ratio is not None and cfg.arch == "fornet":
        cfg = replace(cfg, topk_ratio=topk_ratio)
    return replace(cfg, **overrides) if overrides else cfg


def build_model(cfg: ModelConfig) -> nn.Module:
    """The model a config describes (checkpoints store the config, so this rebuilds any of them)."""
    return DDRNet(cfg) if cfg.arch == "ddrnet" else FoRNet(cfg)


def create_model(variant: str = "fornet_s", num_classes: int = 19, topk_ratio: float | None = None,
                 **overrides) -> nn.Module:
    """Build a registered variant, e.g. ``create_model("fornet_s", num_classes=19, topk_ratio=0.5)``
    (``topk_ratio`` None: the variant's own K)."""
    return build_model(variant_config(variant, num_classes, topk_ratio, **overrides))
