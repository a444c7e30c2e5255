"""The segmentation node's parameters as a dataclass, with validation (pure: no ROS imports).

The node declares each field as a ROS parameter (defaults in ``config/fornet.yaml``), reads them
once into :class:`NodeParams`, and re-validates every change with :func:`validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

# Parameters that can change while the node runs (``ros2 param set``); the others need a restart.
RUNTIME = {"topk_ratio", "max_input_age_ms", "latency_budget_ms", "stale_timeout_s", "publish_color",
           "publish_importance", "publish_confidence", "publish_camera_info"}


@dataclass(frozen=True)
class NodeParams:
    checkpoint: str = ""  # empty: the packaged default model
    allow_untrained: bool = False  # tests only: random weights when no checkpoint can be loaded
    device: str = "auto"
    precision: str = "auto"
    threads: int = 0  # torch CPU threads for inference; 0 = torch's default
    input_size: tuple[int, ...] = ()  # (H, W); empty: the checkpoint's
    topk_ratio: float = -1.0  # < 0: the checkpoint's
    cameras: tuple[str, ...] = ("camera",)
    compressed: bool = False
    publish_color: bool = True
    publish_importance: bool = True
    publish_confidence: bool = True
    publish_camera_info: bool = True
    max_input_age_ms: float = 0.0  # 0: no age limit
    latency_budget_ms: float = 500.0
    stale_timeout_s: float = 2.0
    diagnostics_period_s: float = 1.0
    input_reliability: str = "best_effort"
    input_depth: int = 1
    output_reliability: str = "reliable"
    output_depth: int = 2
    costmap_enabled: bool = True
    costmap_config: str = ""  # YAML with ground_classes / obstacle_classes / layers; empty: built-in default
    grid_frame: str = "base_link"
    grid_resolution: float = 0.1
    grid_width: int = 400
    grid_height: int = 400
    grid_origin: tuple[float, ...] = (0.0, -20.0)
    max_range: float = 30.0
    point_height: float = 0.2
    publish_ground_points: bool = False
    costmap_transient_local: bool = False
    use_tf: bool = True


def validate(p: NodeParams) -> None:
    """Raise ValueError naming the parameter and the reason."""
    import re
    if p.device not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", p.device):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {p.device!r}")
    if p.precision not in ("auto", "fp32", "fp16", "bf16"):
        raise ValueError(f"precision must be auto, fp32, fp16 or bf16, got {p.precision!r}")
    if p.input_size and (len(p.input_size) != 2 or min(p.input_size) < 8):
        raise ValueError(f"input_size must be [] or [H, W] with H, W >= 8, got {list(p.input_size)}")
    if not (p.topk_ratio < 0 or 0.0 <= p.topk_ratio <= 1.0):
        raise ValueError(f"topk_ratio must be in [0, 1] (or negative for the checkpoint's), got {p.topk_ratio}")
    if not p.cameras or any(not c or not re.fullmatch(r"[A-Za-z_/~][A-Za-z0-9_/]*", c) for c in p.cameras):
        raise ValueError(f"cameras must be a non-empty list of valid namespaces, got {list(p.cameras)}")
    if len(set(p.cameras)) != len(p.cameras):
        raise ValueError(f"cameras has duplicates: {list(p.cameras)}")
    for name in ("max_input_age_ms", "latency_budget_ms", "stale_timeout_s", "diagnostics_period_s"):
        if getattr(p, name) < 0 or (name == "diagnostics_period_s" and p.diagnostics_period_s == 0):
            raise ValueError(f"{name} must be positive, got {getattr(p, name)}")
    for name in ("input_reliability", "output_reliability"):
        if getattr(p, name) not in ("reliable", "best_effort"):
            raise ValueError(f"{name} must be reliable or best_effort, got {getattr(p, name)!r}")
    if not (p.grid_resolution > 0 and p.grid_width > 0 and p.grid_height > 0 and len(p.grid_origin) == 2):
        raise ValueError("grid_resolution, grid_width, grid_height must be positive and grid_origin [x, y]")
    if p.max_range <= 0:
        raise ValueError(f"max_range must be positive, got {p.max_range}")
    if p.threads < 0:
        raise ValueError(f"threads must be >= 0, got {p.threads}")
    for name in ("input_depth", "output_depth"):
        if not 1 <= getattr(p, name) <= 100:
            raise ValueError(f"{name} must be in 1..100, got {getattr(p, name)}")


def apply_changes(p: NodeParams, changes: dict) -> NodeParams:
    """New params with ``changes`` applied; raises ValueError (unknown, static or invalid)."""
    names = {f.name for f in fields(NodeParams)}
    for k in changes:
        if k not in names:
            raise ValueError(f"unknown parameter {k!r}")
        if k not in RUNTIME:
            raise ValueError(f"{k} cannot change while the node runs (restart the node)")
    new = replace(p, **changes)
    validate(new)
    return new
