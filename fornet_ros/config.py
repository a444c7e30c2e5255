"""Model configuration: one dataclass threaded through the model and stored in checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a FoR-Net variant (they travel inside every checkpoint).

    channels: backbone widths at strides 2, 4, 8, 16.
    branch_channels: width of each multi-scale refinement branch.
    dilations: one 3x3 branch per dilation (receptive fields 3, 5, 7 for 1, 2, 3).
    region_cells: side of a square region, in stride-8 feature cells (8 cells = 64 input pixels).
    topk_ratio: fraction of regions refined (K); 0 disables refinement, 1 refines everything.
    focus: False builds the "focus off" ablation (no selector, no branches).
    """

    variant: str = "fornet_s"
    num_classes: int = 19
    channels: tuple[int, int, int, int] = (24, 48, 96, 128)
    head_channels: int = 64
    branch_channels: int = 48
    dilations: tuple[int, ...] = (1, 2, 3)
    region_cells: int = 8
    topk_ratio: float = 0.25
    focus: bool = True

    def __post_init__(self):
        if self.num_classes < 1 or self.num_classes > 255:
            raise ValueError(f"num_classes must be in 1..255, got {self.num_classes}")
        if not 0.0 <= self.topk_ratio <= 1.0:
            raise ValueError(f"topk_ratio must be in [0, 1], got {self.topk_ratio}")
        if self.region_cells < 1:
            raise ValueError(f"region_cells must be >= 1, got {self.region_cells}")
        if len(self.channels) != 4:
            raise ValueError(f"channels needs 4 widths (strides 2, 4, 8, 16), got {self.channels}")
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError(f"dilations must be positive, got {self.dilations}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        d = dict(d)
        for key in ("channels", "dilations"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)
