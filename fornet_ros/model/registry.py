"""Named model variants, built by one function (plain dict lookup, no global side effects).

``fornet_s`` is :class:`~fornet_ros.config.ModelConfig`'s defaults exactly; ``ddrnet23_slim`` is
the baseline every accuracy and speed claim is compared with (same trainer, same evaluation)."""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from ..config import (AUTHORS_PAPER_DILATIONS, DEFAULT_TOPK, PAPER_TOPK, EncoderConfig, LightBackboneConfig,
                      ModelConfig, PaperHeadConfig, PlainHeadConfig, SparseHeadConfig)
from .ddrnet import DDRNet
from .fornet import FoRNet

# The authors' widest dilation was made for a 128-row stride-8 map (1024-row Cityscapes crops); CamVid's
# 360-row frames give 45 rows: scaled, 16 * 45 / 128 = 5.6 -> 6 (model/paper_head.py).
CAMVID_PAPER_DILATIONS = (*AUTHORS_PAPER_DILATIONS[:3], round(AUTHORS_PAPER_DILATIONS[3] * 45 / 128))


def _pretrained(encoder: str, head: str) -> ModelConfig:
    """An ImageNet-pretrainable encoder (model/pretrained.py) with one of the three heads."""
    heads = {"paper": (PaperHeadConfig(dilations=CAMVID_PAPER_DILATIONS), PAPER_TOPK),
             "sparse": (SparseHeadConfig(), DEFAULT_TOPK), "plain": (PlainHeadConfig(), 0.0)}
    head_cfg, topk = heads[head]
    return ModelConfig(backbone_cfg=EncoderConfig(encoder), head_cfg=head_cfg, topk_ratio=topk)


VARIANTS: dict[str, ModelConfig] = {
    "fornet_s": ModelConfig(),
    "fornet_m": ModelConfig(backbone_cfg=LightBackboneConfig((32, 64, 128, 192)),
                            head_cfg=SparseHeadConfig(channels=96, branch_channels=48, refine_channels=96)),
    "ddrnet23_slim": ModelConfig(arch="ddrnet", topk_ratio=0.0),
    **{f"{short}_{head}": _pretrained(encoder, head) for short, encoder in (("mnv2", "mobilenet_v2"),
                                                                          ("lite0", "efficientnet_lite0"))
       for head in ("paper", "sparse", "plain")},
    # the authors' configuration: dilated ResNet-101, 256-wide neck and head, dilation 16, K = 0.4 (bring the weights)
    "r101_paper": ModelConfig(backbone_cfg=EncoderConfig("resnet101", neck_channels=256),
                              head_cfg=PaperHeadConfig(channels=256), topk_ratio=PAPER_TOPK),
}


def variant_config(variant: str, num_classes: int = 19, topk_ratio: float | None = None, **options) -> ModelConfig:
    """A registered variant's config; ``options`` by name (:meth:`ModelConfig.with_options`), e.g.
    ``focus=False`` for the focus-off ablation."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    cfg = replace(VARIANTS[variant], variant=variant, num_classes=num_classes)
    if topk_ratio is not None and cfg.arch == "fornet":
        cfg = replace(cfg, topk_ratio=topk_ratio)
    return cfg.with_options(**options) if options else cfg


def build_model(cfg: ModelConfig) -> nn.Module:
    """The model a config describes (checkpoints store the config, so this rebuilds any of them)."""
    return DDRNet(cfg) if cfg.arch == "ddrnet" else FoRNet(cfg)


def create_model(variant: str = "fornet_s", num_classes: int = 19, topk_ratio: float | None = None,
                 **options) -> nn.Module:
    """Build a registered variant, e.g. ``create_model("fornet_s", num_classes=19, topk_ratio=0.5)``
    (``topk_ratio`` None: the variant's own K)."""
    return build_model(variant_config(variant, num_classes, topk_ratio, **options))
