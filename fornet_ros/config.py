"""Model configuration: one dataclass threaded through the model and stored in checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .errors import FornetError

ARCHS = ("fornet", "ddrnet")
BACKBONES = ("light", "mobilenet_v2", "efficientnet_lite0", "resnet101")
HEADS = ("sparse", "paper", "plain")

# K, the fraction of regions refined, is a model setting: its one owner is the model's config (stored in
# the checkpoint; a variant sets its own). The node and the CLI default to the model's own K.
DEFAULT_TOPK = 0.25  # the sparse heads' K (fornet_s, mnv2_sparse, ...)
PAPER_TOPK = 0.4  # the authors' K for their head: the largest of its four nested masks (K/4 ... K)
MODEL_TOPK = -1.0  # "the model's own K": any negative K given to a Segmenter (node parameter topk_ratio)
# The paper head's dilations of its four branches (kernels 1, 3, 5, 7): the authors' on 1024x2048 Cityscapes
# crops, a 128-row stride-8 map (model/paper_head.py; the CamVid variants scale it: model/registry.py).
AUTHORS_PAPER_DILATIONS = (1, 1, 1, 16)


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a model (they travel inside every checkpoint). The defaults are
    ``fornet_s`` exactly (a test holds them equal to the registry's entry).

    arch: "fornet" (this package's model) or "ddrnet" (the DDRNet-23-slim baseline, which reads
        only ``num_classes``; its widths are the paper's).
    channels: backbone widths at strides 2, 4, 8, 16.
    head_channels: width of the stride-8 (cheap, everywhere) head.
    branch_channels: width of each multi-scale branch of the focus stage.
    refine_channels: width of the focus stage's fused features before its classifier.
    dilations: one 3x3 branch per dilation (receptive fields 3, 5, 7 refine-stride cells for 1, 2, 3).
    region_px: side of a square region in input pixels (a multiple of 8 and of refine_stride);
        32 by measurement (docs/benchmarks.md): 16-px regions pay 6x their area in halo copies.
    refine_stride: stride at which the selected regions are refined (4 or 2: backbone features
        of that stride are used).
    topk_ratio: fraction of regions refined (K); 0 disables refinement, 1 refines everything.
    focus: False builds the "focus off" ablation (no selector, no focus stage): the stride-8 head alone
        (``head="sparse"`` only; ``head="plain"`` is the focus-off build of the pretrained models).
    backbone: "light" (this package's dense-conv backbone, ``channels``), or an ImageNet-pretrainable
        one (:mod:`fornet_ros.model.encoders`): "mobilenet_v2", "efficientnet_lite0", "resnet101";
        their stride-8/16/32 features are fused into ``neck_channels`` stride-8 features.
    head: "sparse" (this package's FoR-Net head: Top-K regions refined at ``refine_stride``, compute
        ∝ K), "paper" (the authors' FoR-Net head: nested Top-K masks gating four multi-scale branches at
        stride 8, a stride-4 decoder; :mod:`fornet_ros.model.paper_head`), or "plain" (the paper head
        without selector and branches: the same neck and decoder, the focus-off baseline).
    neck_channels: width of the fused stride-8 features of a pretrained backbone (and of the paper
        head's branches).
    paper_dilations: dilation of each of the paper head's four branches (kernels 1, 3, 5, 7); the
        authors use (1, 1, 1, 16) on 1024x2048 Cityscapes crops (a 128x256 stride-8 map).
    """

    variant: str = "fornet_s"
    arch: str = "fornet"
    num_classes: int = 19
    channels: tuple[int, int, int, int] = (24, 48, 96, 128)
    head_channels: int = 64
    branch_channels: int = 32
    refine_channels: int = 64
    dilations: tuple[int, ...] = (1, 2, 3)
    region_px: int = 32
    refine_stride: int = 4
    topk_ratio: float = DEFAULT_TOPK
    focus: bool = True
    backbone: str = "light"
    head: str = "sparse"
    neck_channels: int = 96
    paper_dilations: tuple[int, ...] = AUTHORS_PAPER_DILATIONS

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise FornetError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.backbone not in BACKBONES:
            raise FornetError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.head not in HEADS:
            raise FornetError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.head != "sparse" and self.region_px != 8:
            raise FornetError(f"the {self.head} head works on stride-8 cells: region_px must be 8, got {self.region_px}")
        if (self.head == "plain" and self.focus) or (self.head == "paper" and not self.focus):
            raise FornetError(f"the {self.head} head needs focus={self.head == 'paper'}")
        if len(self.paper_dilations) != 4 or min(self.paper_dilations) < 1:
            raise FornetError(f"paper_dilations needs 4 positive dilations, got {self.paper_dilations}")
        if self.num_classes < 1 or self.num_classes > 255:
            raise FornetError(f"num_classes must be in 1..255, got {self.num_classes}")
        if not 0.0 <= self.topk_ratio <= 1.0:
            raise FornetError(f"topk_ratio must be in [0, 1], got {self.topk_ratio}")
        if self.refine_stride not in (2, 4):
            raise FornetError(f"refine_stride must be 2 or 4, got {self.refine_stride}")
        if self.region_px < 8 or self.region_px % 8:
            raise FornetError(f"region_px must be a positive multiple of 8, got {self.region_px}")
        if len(self.channels) != 4:
            raise FornetError(f"channels needs 4 widths (strides 2, 4, 8, 16), got {self.channels}")
        if not self.dilations or min(self.dilations) < 1:
            raise FornetError(f"dilations must be positive, got {self.dilations}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["dilations"] = list(self.dilations)
        d["paper_dilations"] = list(self.paper_dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise FornetError(f"unknown model config keys: {sorted(unknown)}")
        d = dict(d)
        for key in ("channels", "dilations", "paper_dilations"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)
