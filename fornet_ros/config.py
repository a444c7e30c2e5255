"""Model configuration, stored in every checkpoint: a :class:`ModelConfig` composed of one typed config
for the backbone and one for the head (the smp / timm builders' way: each part takes only the options
it reads), and the settings every model shares (variant, arch, classes, K).

A checkpoint stores :meth:`ModelConfig.to_dict` (``backbone`` and ``head`` nested, each with its
``name``); the flat 16-key layout of the first release (every option of every part, most of them
inert) still loads, through :func:`migrate_flat_config`, the one place that knows it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import ClassVar

from .errors import FornetError
from .validation import PRECISIONS

ARCHS = ("fornet", "ddrnet")
ENCODER_NAMES = ("mobilenet_v2", "efficientnet_lite0", "resnet101")
BACKBONES = ("light", *ENCODER_NAMES)
HEADS = ("sparse", "paper", "plain")

# K, the fraction of regions refined, is a model setting: its one owner is the model's config (stored in
# the checkpoint; a variant sets its own). The node and the CLI default to the model's own K.
DEFAULT_TOPK = 0.25  # the sparse heads' K (fornet_s, mnv2_sparse, ...)
PAPER_TOPK = 0.4  # the authors' K for their head: the largest of its four nested masks (K/4 ... K)
MODEL_TOPK = -1.0  # "the model's own K": any negative K given to a Segmenter (node parameter topk_ratio)
# The paper head's dilations of its four branches (kernels 1, 3, 5, 7): the authors' on 1024x2048 Cityscapes
# crops, a 128-row stride-8 map (model/paper_head.py; the CamVid variants scale it: model/registry.py).
AUTHORS_PAPER_DILATIONS = (1, 1, 1, 16)
DEFAULT_REGION_PX = 32  # the sparse head's region side (docs/benchmarks.md); DDRNet's zero maps use it too


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


class _Part:
    """A backbone's or head's config: ``name`` + its own options; (de)serialised as one dict."""

    name: str

    def to_dict(self) -> dict:
        return {"name": self.name, **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}}


@dataclass(frozen=True)
class LightBackboneConfig(_Part):
    """This package's dense-conv backbone (:mod:`fornet_ros.model.light_backbone`).
    channels: its widths at strides 2, 4, 8, 16."""

    channels: tuple[int, int, int, int] = (24, 48, 96, 128)
    name: ClassVar[str] = "light"

    def __post_init__(self):
        if len(self.channels) != 4 or min(self.channels) < 1:
            raise FornetError(f"channels needs 4 positive widths (strides 2, 4, 8, 16), got {self.channels}")


@dataclass(frozen=True)
class EncoderConfig(_Part):
    """An ImageNet-pretrainable encoder (:mod:`fornet_ros.model.encoders`) whose stride-8/16/32
    features a neck fuses into ``neck_channels`` stride-8 features.
    name: "mobilenet_v2", "efficientnet_lite0" or "resnet101"."""

    name: str = "mobilenet_v2"
    neck_channels: int = 96

    def __post_init__(self):
        if self.name not in ENCODER_NAMES:
            raise FornetError(f"backbone must be one of {BACKBONES}, got {self.name!r}")
        if self.neck_channels < 1:
            raise FornetError(f"neck_channels must be positive, got {self.neck_channels}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SparseHeadConfig(_Part):
    """This package's FoR-Net head (:mod:`fornet_ros.model.focus`): Top-K regions refined at
    ``refine_stride``, compute ∝ K.

    channels: width of the stride-8 (cheap, everywhere) head.
    focus: False builds the "focus off" ablation (no selector, no focus stage): the stride-8 head alone.
    branch_channels: width of each multi-scale branch of the focus stage.
    refine_channels: width of the focus stage's fused features before its classifier.
    dilations: one 3x3 branch per dilation (receptive fields 3, 5, 7 refine-stride cells for 1, 2, 3).
    region_px: side of a square region in input pixels (a multiple of 8 and of refine_stride);
        32 by measurement (docs/benchmarks.md): 16-px regions pay 6x their area in halo copies.
    refine_stride: stride at which the selected regions are refined (4 or 2: backbone features
        of that stride are used)."""

    channels: int = 64
    focus: bool = True
    branch_channels: int = 32
    refine_channels: int = 64
    dilations: tuple[int, ...] = (1, 2, 3)
    region_px: int = DEFAULT_REGION_PX
    refine_stride: int = 4
    name: ClassVar[str] = "sparse"

    def __post_init__(self):
        if self.refine_stride not in (2, 4):
            raise FornetError(f"refine_stride must be 2 or 4, got {self.refine_stride}")
        if self.region_px < 8 or self.region_px % 8:
            raise FornetError(f"region_px must be a positive multiple of 8, got {self.region_px}")
        if not self.dilations or min(self.dilations) < 1:
            raise FornetError(f"dilations must be positive, got {self.dilations}")


@dataclass(frozen=True)
class PaperHeadConfig(_Part):
    """The authors' FoR-Net head (:mod:`fornet_ros.model.paper_head`): nested Top-K masks gating four
    multi-scale branches at stride 8, a stride-4 decoder. Regions are the stride-8 cells.
    channels: its width (the authors' 256 on ResNet-101; 96 on the mobile encoders).
    dilations: of its four branches (kernels 1, 3, 5, 7)."""

    channels: int = 96
    dilations: tuple[int, ...] = AUTHORS_PAPER_DILATIONS
    name: ClassVar[str] = "paper"
    focus: ClassVar[bool] = True
    region_px: ClassVar[int] = 8
    refine_stride: ClassVar[int] = 4  # the decoder's logits

    def __post_init__(self):
        if len(self.dilations) != 4 or min(self.dilations) < 1:
            raise FornetError(f"paper_dilations needs 4 positive dilations, got {self.dilations}")


@dataclass(frozen=True)
class PlainHeadConfig(_Part):
    """The paper head without selector and branches (the focus-off baseline of the pretrained models):
    the same projection and stride-4 decoder. channels: its width."""

    channels: int = 96
    name: ClassVar[str] = "plain"
    focus: ClassVar[bool] = False
    region_px: ClassVar[int] = 8
    refine_stride: ClassVar[int] = 4


HEAD_CONFIGS = {c.name: c for c in (SparseHeadConfig, PaperHeadConfig, PlainHeadConfig)}


def backbone_config(d: dict):
    d = _tuples(d)
    name = d.pop("name", None)
    if name == "light":
        return LightBackboneConfig(**d)
    if name in ENCODER_NAMES:
        return EncoderConfig(name, **d)
    raise FornetError(f"backbone must be one of {BACKBONES}, got {name!r}")


def head_config(d: dict):
    d = _tuples(d)
    name = d.pop("name", None)
    if name not in HEAD_CONFIGS:
        raise FornetError(f"head must be one of {HEADS}, got {name!r}")
    return HEAD_CONFIGS[name](**d)


@dataclass(frozen=True)
class ModelConfig:
    """A model: the settings every model shares, and (``arch="fornet"``) its backbone's and head's own
    configs. The defaults are ``fornet_s`` exactly (a test holds them equal to the registry's entry).

    arch: "fornet" (this package's model) or "ddrnet" (the DDRNet-23-slim baseline, which reads
        only ``num_classes``; its widths are the paper's: it has no backbone or head config).
    topk_ratio: fraction of regions refined (K); 0 disables refinement, 1 refines everything.
    backbone_cfg: :class:`LightBackboneConfig` or :class:`EncoderConfig`.
    head_cfg: :class:`SparseHeadConfig`, :class:`PaperHeadConfig` or :class:`PlainHeadConfig`.

    The rest of the package reads the parts through ``backbone`` and ``head`` (names), ``focus``,
    ``region_px`` (the grid of the importance maps) and ``refine_stride`` (the logits' stride).
    """

    variant: str = "fornet_s"
    arch: str = "fornet"
    num_classes: int = 19
    topk_ratio: float = DEFAULT_TOPK
    backbone_cfg: LightBackboneConfig | EncoderConfig | None = field(default_factory=LightBackboneConfig)
    head_cfg: SparseHeadConfig | PaperHeadConfig | PlainHeadConfig | None = field(default_factory=SparseHeadConfig)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise FornetError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.arch == "ddrnet":  # its backbone and head are fixed: nothing to configure
            object.__setattr__(self, "backbone_cfg", None)
            object.__setattr__(self, "head_cfg", None)
        elif not isinstance(self.backbone_cfg, (LightBackboneConfig, EncoderConfig)):
            raise FornetError(f"backbone_cfg must be a LightBackboneConfig or EncoderConfig, got {self.backbone_cfg!r}")
        elif not isinstance(self.head_cfg, tuple(HEAD_CONFIGS.values())):
            raise FornetError(f"head_cfg must be one of {[c.__name__ for c in HEAD_CONFIGS.values()]}, "
                              f"got {self.head_cfg!r}")
        if self.num_classes < 1 or self.num_classes > 255:
            raise FornetError(f"num_classes must be in 1..255, got {self.num_classes}")
        if not 0.0 <= self.topk_ratio <= 1.0:
            raise FornetError(f"topk_ratio must be in [0, 1], got {self.topk_ratio}")

    backbone = property(lambda self: self.backbone_cfg.name if self.backbone_cfg else None,
                        doc="the backbone's name (None: DDRNet's own)")
    head = property(lambda self: self.head_cfg.name if self.head_cfg else None, doc="the head's name (None: DDRNet's)")
    focus = property(lambda self: bool(self.head_cfg and self.head_cfg.focus), doc="a selector and Top-K focus?")
    region_px = property(lambda self: self.head_cfg.region_px if self.head_cfg else DEFAULT_REGION_PX,
                         doc="side of a region in input pixels: the grid of importance / selected")
    refine_stride = property(lambda self: self.head_cfg.refine_stride if self.head_cfg else 8,
                             doc="stride of the refined logits")

    def with_options(self, **options) -> "ModelConfig":
        """A copy with options by name: the shared settings, or an option of this model's head or
        backbone (``focus=False``, ``region_px=16``, ``refine_stride=2``, ``channels=...``: the head's
        first). An option that neither part has is a one-line error."""
        top = {k: options.pop(k) for k in list(options) if k in {f.name for f in fields(self)}}
        parts = {}
        for key, part in (("head_cfg", self.head_cfg), ("backbone_cfg", self.backbone_cfg)):
            own = {k: options.pop(k) for k in list(options) if part is not None and k in {f.name for f in fields(part)}}
            if own:
                parts[key] = replace(part, **_tuples(own))
        if options:
            raise FornetError(f"{', '.join(sorted(options))} does not apply to {self.variant} (backbone "
                              f"{self.backbone}, head {self.head})")
        return replace(self, **top, **parts)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.endswith("_cfg")}
        d["backbone"] = self.backbone_cfg.to_dict() if self.backbone_cfg else None
        d["head"] = self.head_cfg.to_dict() if self.head_cfg else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """From :meth:`to_dict`'s layout, or the first release's flat one (:func:`migrate_flat_config`)."""
        if "backbone" not in d or isinstance(d["backbone"], str):
            return migrate_flat_config(d)
        shared = {f.name for f in fields(cls) if not f.name.endswith("_cfg")}
        unknown = set(d) - shared - {"backbone", "head"}
        if unknown:
            raise FornetError(f"unknown model config keys: {sorted(unknown)}")
        parts = {} if d.get("arch") == "ddrnet" else {"backbone_cfg": backbone_config(d["backbone"]),
                                                      "head_cfg": head_config(d["head"])}
        return cls(**{k: d[k] for k in shared if k in d}, **parts)


# The first release's flat layout: every option of every part (defaults as they were then).
FLAT_DEFAULTS = dict(variant="fornet_s", arch="fornet", num_classes=19, channels=(24, 48, 96, 128), head_channels=64,
                     branch_channels=32, refine_channels=64, dilations=(1, 2, 3), region_px=32, refine_stride=4,
                     topk_ratio=0.25, focus=True, backbone="light", head="sparse", neck_channels=96,
                     paper_dilations=(1, 1, 1, 16))


def migrate_flat_config(flat: dict) -> ModelConfig:
    """The one migration: a flat model config (checkpoints and ONNX files written before the typed
    configs) -> :class:`ModelConfig`. Each part takes the keys it reads; the others were inert (the
    packaged models store the light backbone's ``channels`` they never used) and are dropped."""
    unknown = set(flat) - set(FLAT_DEFAULTS)
    if unknown:
        raise FornetError(f"unknown model config keys: {sorted(unknown)}")
    d = {**FLAT_DEFAULTS, **_tuples(flat)}
    shared = {k: d[k] for k in ("variant", "arch", "num_classes", "topk_ratio")}
    if d["arch"] == "ddrnet":
        return ModelConfig(**shared)
    if d["head"] != "sparse" and d["region_px"] != 8:  # the flat layout's rule, kept for its files
        raise FornetError(f"the {d['head']} head works on stride-8 cells: region_px must be 8, got {d['region_px']}")
    if d["head"] in ("paper", "plain") and d["focus"] != (d["head"] == "paper"):
        raise FornetError(f"the {d['head']} head needs focus={d['head'] == 'paper'}")
    backbone = (LightBackboneConfig(d["channels"]) if d["backbone"] == "light" else
                EncoderConfig(d["backbone"], d["neck_channels"]))
    if d["head"] == "sparse":
        head = SparseHeadConfig(d["head_channels"], d["focus"], d["branch_channels"], d["refine_channels"],
                                d["dilations"], d["region_px"], d["refine_stride"])
    elif d["head"] == "paper":  # the flat layout tied the paper head's width to the neck's
        head = PaperHeadConfig(d["neck_channels"], d["paper_dilations"])
    else:
        head = head_config({"name": d["head"], "channels": d["neck_channels"]})
    return ModelConfig(**shared, backbone_cfg=backbone, head_cfg=head)


# -- how to run a model ----------------------------------------------------------------------------------
BACKENDS = ("auto", "torch", "onnxruntime", "fastest")
RESIZE_MODES = ("stretch", "letterbox")
PROCESSING = ("auto", "opencv", "torch")  # where pre/post-processing runs (auto: torch ops on CUDA)


@dataclass(frozen=True)
class RunOption:
    """An option of running a model (an argument of ``Segmenter.from_checkpoint``), declared once: the
    node's parameter of this name (node/params.py) and the ``--name`` option of every command that runs
    a model (commands/model_options.py) take their default, choices and description from here."""

    name: str
    default: object
    description: str
    choices: tuple[str, ...] | None = None


RUN_OPTIONS = {o.name: o for o in (
    RunOption("backend", "auto", "torch, onnxruntime, auto (onnxruntime for a .onnx checkpoint, torch otherwise), or "
              "fastest (a .pt on the CPU: the faster of torch and its ONNX export, cached beside it, measured at start)",
              BACKENDS),
    RunOption("device", "auto", "auto (CUDA if present), cpu, cuda, cuda:N"),
    RunOption("precision", "auto", "auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16", PRECISIONS),
    RunOption("resize_mode", "stretch", "stretch the image to input_size, or letterbox (keep the aspect ratio, pad); "
              "outputs keep the image size", RESIZE_MODES),
    RunOption("processing", "auto", "where resize/normalise and upsample/arg-max run: torch (on the model's device: "
              "the frame stays on the GPU), opencv (CPU), auto (torch on CUDA, opencv on the CPU)", PROCESSING),
    RunOption("cuda_graphs", True, "on CUDA (torch backend and processing), replay the network from CUDA graphs, one "
              "captured per camera count and K"),
)}
