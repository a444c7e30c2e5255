"""Named FoR-Net variants, built by one function (plain dict lookup, no global side effects)."""

from __future__ import annotations

from dataclasses import replace

from ..config import ModelConfig
from .fornet import FoRNet

VARIANTS: dict[str, dict] = {
    # ~ half of DDRNet-23-slim's CPU latency at 512x1024 is the target for the smallest one.
    "fornet_s": dict(channels=(24, 48, 96, 128), head_channels=64, branch_channels=96),
    "fornet_m": dict(channels=(32, 64, 128, 192), head_channels=96, branch_channels=128),
}


def variant_config(variant: str, num_classes: int = 19, topk_ratio: float = 0.25, **overrides) -> ModelConfig:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    cfg = ModelConfig(variant=variant, num_classes=num_classes, topk_ratio=topk_ratio, **VARIANTS[variant])
    return replace(cfg, **overrides) if overrides else cfg


def create_model(variant: str = "fornet_s", num_classes: int = 19, topk_ratio: float = 0.25, **overrides) -> FoRNet:
    """Build a FoR-Net variant, e.g. ``create_model("fornet_s", num_classes=19, topk_ratio=0.25)``."""
    return FoRNet(variant_config(variant, num_classes, topk_ratio, **overrides))
