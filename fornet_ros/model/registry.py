"""Named model variants, built by one function (plain dict lookup, no global side effects).

``fornet_s`` is :class:`~fornet_ros.config.ModelConfig`'s defaults exactly; ``ddrnet23_slim`` is
the baseline every accuracy and speed claim is compared with (same trainer, same evaluation)."""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from ..config import ModelConfig
from .ddrnet import DDRNet
from .fornet import FoRNet

VARIANTS: dict[str, dict] = {
    "fornet_s": dict(),
    "fornet_m": dict(channels=(32, 64, 128, 192), head_channels=96, branch_channels=48, refine_channels=96),
    "ddrnet23_slim": dict(arch="ddrnet", focus=False, topk_ratio=0.0),
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
    """Build a registered variant, e.g. ``create_model("fornet_s", num_classes=19, topk_ratio=0.25)``."""
    return build_model(variant_config(variant, num_classes, topk_ratio, **overrides))
