"""segmentation_node's parameters: one table (pure: no ROS imports).

Each parameter is one :class:`NodeParams` field; its metadata holds the description, the range
(or choices, or a check) and whether it may change while the node runs. From this table follow
the node's ParameterDescriptors (static parameters are ``read_only``, so rclpy itself rejects
changing them), the validation of start-up values and of run-time changes, and the defaults in
``config/fornet.yaml`` (a test keeps the two equal).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import get_type_hints

from ..config import MODEL_TOPK, RUN_OPTIONS


def _param(default, description: str, *, runtime: bool = False, range: tuple | None = None,
           choices: tuple[str, ...] | None = None, check=None, constraint: str = ""):
    """A NodeParams field. ``range``: inclusive (min, max) of a number; ``choices``: allowed
    strings; ``check(value) -> bool`` with ``constraint`` saying what it requires."""
    if choices:
        constraint = "one of " + ", ".join(choices)
    return field(default=default, metadata=dict(description=description, runtime=runtime, range=range,
                                                check=check, constraint=constraint, choices=choices))


def _run_param(name: str, node_default=MISSING, why: str = "", **kw):
    """A NodeParams field for a run option: default, description and choices from config.RUN_OPTIONS,
    the table the command line reads too; ``node_default`` (with ``why``) where the node's differs."""
    o = RUN_OPTIONS[name]
    if node_default is MISSING:
        return _param(o.default, o.description, choices=o.choices, **kw)
    return _param(node_default, f"{o.description}. The node's default: {node_default} ({why})", choices=o.choices, **kw)


def _input_size_ok(v) -> bool:
    return len(v) == 2 and (tuple(v) == (0, 0) or min(v) >= 8)


# A valid ROS name (namespace or topic): tokens of letters, digits and '_', not starting with a
# digit, separated by single '/', optionally absolute or '~/'-relative, no trailing '/'.
ROS_NAME_RE = re.compile(r"(/|~/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")


def is_ros_name(name: str) -> bool:
    return ROS_NAME_RE.fullmatch(name) is not None


def _cameras_ok(v) -> bool:
    return bool(v) and len(set(v)) == len(v) and all(is_ros_name(c) for c in v)


RELIABILITY = ("reliable", "best_effort")


@dataclass(frozen=True)
class NodeParams:
    autostart: bool = _param(True, "configure and activate at start-up; false: stay unconfigured until a lifecycle "
                             "manager (nav2_lifecycle_manager, ros2 lifecycle set) drives change_state")
    checkpoint: str = _param("", "FoR-Net checkpoint (.pt), exported model (.onnx), or another toolbox's .onnx with its "
                             "description <stem>.yaml beside it; empty = the packaged default model")
    backend: str = _run_param("backend", "fastest", "inside the node ONNX Runtime keeps its speed on a small CPU "
                              "where torch's thread team does not; torch still runs any other K; docs/benchmarks.md")
    allow_untrained: bool = _param(False, "use random weights if the checkpoint cannot be loaded (tests only)")
    device: str = _run_param("device", check=lambda v: re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
                             constraint="auto, cpu, cuda or cuda:N")
    precision: str = _run_param("precision")
    threads: int = _param(0, "torch CPU threads for inference (0 = torch's default); on small CPUs leave a core "
                          "to DDS", range=(0, 256))
    resize_mode: str = _run_param("resize_mode")
    processing: str = _run_param("processing")
    cuda_graphs: bool = _run_param("cuda_graphs")
    input_size: tuple[int, ...] = _param((0, 0), "[H, W] the network sees; [0, 0] = the checkpoint's. Outputs "
                                         "keep the image size", check=_input_size_ok,
                                         constraint="[0, 0] or [H, W] with H, W >= 8")
    topk_ratio: float = _param(MODEL_TOPK, "fraction of regions refined by the focus branches; negative = the "
                               "checkpoint's", runtime=True, range=(-1.0, 1.0))
    cameras: tuple[str, ...] = _param(("camera",), "camera namespaces; each gets <cam>/image_raw -> "
                                      "<cam>/semantic/*", check=_cameras_ok,
                                      constraint="a non-empty list of distinct valid namespaces")
    compressed: bool = _param(False, "subscribe <cam>/image_raw/compressed (jpeg/png) instead of <cam>/image_raw")
    publish_color: bool = _param(True, "publish <cam>/semantic/color", runtime=True)
    publish_importance: bool = _param(True, "publish <cam>/semantic/importance", runtime=True)
    publish_confidence: bool = _param(True, "publish <cam>/semantic/confidence", runtime=True)
    publish_overlay: bool = _param(True, "publish <cam>/semantic/overlay (the image blended with the label colours)",
                                   runtime=True)
    overlay_alpha: float = _param(0.5, "opacity of the label colours in the overlay", runtime=True, range=(0.0, 1.0))
    publish_camera_info: bool = _param(True, "publish <cam>/semantic/camera_info", runtime=True)
    max_input_age_ms: float = _param(0.0, "drop frames whose stamp is older than this when the worker takes them "
                                     "(0 = off)", runtime=True, range=(0.0, 3.6e6))
    max_stamp_ahead_ms: float = _param(1000.0, "drop frames stamped more than this ahead of the node's clock "
                                       "(counted as dropped_future_stamp, diagnostics WARN; 0 = off)",
                                       runtime=True, range=(0.0, 3.6e6))
    max_input_pixels: int = _param(20_000_000, "reject images of more pixels, before decoding (a compressed "
                                   "image's size is read from its PNG/JPEG header; counted as bad)",
                                   range=(1, 1_000_000_000))
    generic_color_order: str = _param("reject", "channel order of 8UC3/8UC4/16UC3/16UC4 images (the encoding "
                                      "does not say): reject (counted as bad), bgr or rgb",
                                      choices=("reject", "bgr", "rgb"))
    input_bit_depth: int = _param(0, "significant bits of 16-bit images (mono16, rgb16, bayer_*16, ...): 0 = per "
                                  "frame, the smallest of 10, 12, 14, 16 bits that holds its maximum; 8..16 = fixed "
                                  "(larger values saturate)", range=(0, 16),
                                  check=lambda v: v == 0 or v >= 8, constraint="0 or 8..16")
    latency_budget_ms: float = _param(500.0, "diagnostics WARN when p95 end-to-end latency exceeds this",
                                      runtime=True, range=(0.0, 3.6e6))
    latency_target_ms: float = _param(0.0, "p95 latency target, frame received -> its outputs published (DDS "
                                      "transport not included: fornet bench-node measures its floor): > 0 lets a "
                                      "controller move K to hold it, from k_min up to k_max, or higher where that "
                                      "costs no more than k_max (K in use on semantic/topk_ratio); 0 = off, "
                                      "topk_ratio applies",
                                      runtime=True, range=(0.0, 3.6e6))
    k_min: float = _param(0.05, "lowest K the latency controller may use", runtime=True, range=(0.0, 1.0))
    k_max: float = _param(0.5, "highest K the latency controller may use, or the cost it may spend: a higher K that "
                          "costs no more (measured) is taken", runtime=True, range=(0.0, 1.0))
    stale_timeout_s: float = _param(2.0, "diagnostics ERROR when a camera sent nothing for this long",
                                    runtime=True, range=(0.0, 86400.0))
    diagnostics_period_s: float = _param(1.0, "period of /diagnostics (wall clock)", range=(0.01, 3600.0))
    input_reliability: str = _param("best_effort", "input QoS reliability (camera drivers usually publish "
                                    "best_effort-compatible); use reliable for frames over ~1 MB (see README: a "
                                    "best-effort frame that loses one fragment is lost whole)", choices=RELIABILITY)
    input_depth: int = _param(1, "input QoS history depth", range=(1, 100))
    output_reliability: str = _param("reliable", "output QoS reliability", choices=RELIABILITY)
    output_depth: int = _param(2, "output QoS history depth", range=(1, 100))
    costmap_enabled: bool = _param(True, "publish semantic_costmap/* OccupancyGrids and semantic_points "
                                   "(needs camera_info)")
    costmap_config: str = _param("", "YAML with ground_classes, obstacle_classes, layers [{name, classes, cost}]; "
                                 "empty = built-in (config/semantic_costmap.yaml)")
    grid_frame: str = _param("base_link", "frame of the grids (the robot base, z = 0 is the ground)",
                             check=bool, constraint="non-empty")
    grid_resolution: float = _param(0.1, "metres per cell", range=(0.001, 100.0))
    grid_width: int = _param(400, "cells along x", range=(1, 100000))
    grid_height: int = _param(400, "cells along y", range=(1, 100000))
    grid_origin: tuple[float, ...] = _param((0.0, -20.0), "[x, y] of cell (0, 0)'s corner in grid_frame (m)",
                                            check=lambda v: len(v) == 2, constraint="[x, y]")
    costmap_window_s: float = _param(0.5, "a camera's labels stay in the fused grids this long after they were "
                                     "received (by receipt time, not header stamp); a silent camera then drops out",
                                     range=(0.01, 60.0))
    costmap_decay_s: float = _param(0.0, "temporal filter: a cell no camera sees now keeps its last cost, fading "
                                    "linearly to 0 over this many seconds, then unknown; 0 = off (the grids show only "
                                    "the frames in costmap_window_s)", range=(0.0, 3600.0))
    costmap_min_confidence: float = _param(0.0, "confidence gating: pixels whose confidence (max softmax) is below this "
                                           "are left out of the grids (unknown); 0 = off", range=(0.0, 1.0))
    max_range: float = _param(30.0, "ignore ground points farther than this from the camera (m)",
                              range=(0.01, 10000.0))
    point_height: float = _param(0.2, "z of the obstacle points in semantic_points (m)", range=(-100.0, 100.0))
    publish_ground_points: bool = _param(False, "also publish semantic_ground_points (drivable surface, a "
                                         "clearing source)")
    costmap_transient_local: bool = _param(False, "latch the grids (match map_subscribe_transient_local in Nav2)")
    depth_enabled: bool = _param(False, "subscribe <cam>/depth/image_raw (16UC1 mm or 32FC1 m, registered to the colour "
                                 "camera) and publish <cam>/semantic/points: organised, pixel-aligned x, y, z, label, "
                                 "confidence in the image's optical frame")
    depth_range: tuple[float, ...] = _param((0.1, 50.0), "[min, max] valid depth (m); others are dropped and counted",
                                           check=lambda v: len(v) == 2 and 0 <= v[0] < v[1],
                                           constraint="[min, max] with 0 <= min < max")
    depth_registration: bool = _param(False, "register depth here (when the driver does not): reproject the depth "
                                      "camera's points, with <cam>/depth/camera_info and depth_extrinsic, into the "
                                      "colour camera")
    depth_extrinsic: tuple[float, ...] = _param((0.0, 0.0, 0.0, 0.0, 0.0, 0.0), "[x, y, z, roll, pitch, yaw] of the "
                                                "depth camera's optical frame in the colour camera's optical frame "
                                                "(m, rad; p_colour = R p_depth + t), for depth_registration",
                                                check=lambda v: len(v) == 6, constraint="6 numbers")
    depth_obstacle_height: tuple[float, ...] = _param((0.05, 2.0), "with depth: obstacle-class points between these "
                                                      "heights above the ground (m) mark the grids and semantic_points "
                                                      "in place of the flat-ground contacts",
                                                      check=lambda v: len(v) == 2 and v[0] < v[1],
                                                      constraint="[min, max] with min < max")
    lidar_topic: str = _param("", "PointCloud2 to label (x, y, z float32 fields); empty = no LiDAR. Output: "
                              "semantic/lidar_points in the LiDAR's frame")
    lidar_camera: str = _param("", "camera whose mask labels the LiDAR points; empty = the first camera")
    lidar_pose: tuple[float, ...] = _param((0.0, 0.0, 1.8, 0.0, 0.0, 0.0), "[x, y, z, roll, pitch, yaw] of the LiDAR "
                                           "in grid_frame (m, rad), with camera_pose.<cam> giving the LiDAR->camera "
                                           "transform", check=lambda v: len(v) == 6, constraint="6 numbers")
    sync_slop_ms: float = _param(50.0, "depth/LiDAR pair with the colour frame nearest in stamp within this; unmatched "
                                 "frames are counted and the colour path never waits (no motion compensation)",
                                 range=(0.0, 10000.0))
    use_tf: bool = _param(True, "camera pose from TF at the image stamp when tf2_ros exists, else camera_pose.<cam>")

    def __post_init__(self):
        for f in fields(self):
            _check(f, getattr(self, f.name))
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) must not exceed k_max ({self.k_max})")

    @classmethod
    def from_values(cls, values: dict) -> "NodeParams":
        """From ROS parameter values (lists, ints for floats); raises ValueError naming the parameter."""
        return cls(**{k: coerce(k, v) for k, v in values.items()})

    def changed(self, changes: dict) -> "NodeParams":
        """A copy with run-time ``changes`` applied; raises ValueError (unknown, static or invalid)."""
        static = [k for k in changes if k in SPECS and not SPECS[k].runtime]
        if static:
            raise ValueError(f"{', '.join(static)} cannot change while the node runs (restart the node)")
        return replace(self, **{k: coerce(k, v) for k, v in changes.items()})


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str  # bool, int, float, str, int[], float[], str[]
    default: object  # a ROS value (lists, not tuples)
    description: str
    runtime: bool
    range: tuple | None
    constraint: str


_TYPES = {bool: "bool", int: "int", float: "float", str: "str", tuple[int, ...]: "int[]",
          tuple[float, ...]: "float[]", tuple[str, ...]: "str[]"}
_HINTS = get_type_hints(NodeParams)
SPECS: dict[str, ParamSpec] = {
    f.name: ParamSpec(f.name, _TYPES[_HINTS[f.name]], list(f.default) if isinstance(f.default, tuple) else f.default,
                      f.metadata["description"], f.metadata["runtime"], f.metadata["range"], f.metadata["constraint"])
    for f in fields(NodeParams) if f.default is not MISSING}


# Static parameters per camera (not fields: their names depend on ``cameras``): <name>.<cam>.
CAMERA_POSE = ParamSpec("camera_pose.<cam>", "float[]", [0.0, 0.0, 1.5, 0.0, 0.0, 0.0],
                        "[x, y, z, roll, pitch, yaw] of the camera's body frame in grid_frame (m, rad); used when "
                        "TF has no transform", False, None, "6 finite numbers")
SELF_MASK_ROWS = ParamSpec("self_mask_rows.<cam>", "int", 0,
                           "self mask: image rows from the bottom that show the robot itself (e.g. a car's hood); "
                           "they never reach the costmap or the labelled points (0 = none)", False, (0, 100000), "")
SELF_MASK_IMAGE = ParamSpec("self_mask_image.<cam>", "str", "",
                            "self mask: an image whose non-zero pixels show the robot itself (resized nearest to the "
                            "camera's frames); they never reach the costmap or the labelled points (empty = none)",
                            False, None, "")
PER_CAMERA = (CAMERA_POSE, SELF_MASK_ROWS, SELF_MASK_IMAGE)


def camera_param_name(spec: ParamSpec, camera: str) -> str:
    """The name of a per-camera parameter for ``camera``: ``self_mask_rows.front``."""
    return f"{spec.name.split('.')[0]}.{camera.strip('/').replace('/', '_')}"


def camera_pose_name(camera: str) -> str:
    return camera_param_name(CAMERA_POSE, camera)


def undeclared_parameters(given, declared) -> str | None:
    """One line naming every parameter in ``given`` (the names a params file or ``-p`` gave the node)
    that is not in ``declared``, each with the closest declared name, or None when there is none.
    A misspelled name (``topk_ratoi``) would otherwise be ignored without a word. Per-camera
    parameters of a camera not in ``cameras`` are not reported: one params file may describe more
    cameras than a launch uses (the packaged one's ``camera_pose.camera`` under ``camera:=front``)."""
    per_camera = tuple(spec.name.split("<")[0] for spec in PER_CAMERA)
    unknown = sorted(n for n in set(given) - set(declared) if not n.startswith(per_camera))
    if not unknown:
        return None
    names = sorted(declared)
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        parts.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return f"parameters this node does not have, ignored: {', '.join(parts)}"


def coerce(name: str, value):
    """A ROS parameter value -> the field's Python type (lists -> tuples, ints -> floats)."""
    if name not in SPECS:
        raise ValueError(f"unknown parameter {name!r}")
    kind = SPECS[name].type
    base, is_list = kind.rstrip("[]"), kind.endswith("[]")
    items = list(value) if is_list and isinstance(value, (list, tuple)) else [value]
    if is_list != isinstance(value, (list, tuple)) or not all(_is(v, base) for v in items):
        what = {"float": "number", "int": "integer", "str": "string", "bool": "bool"}[base]
        what = f"a list of {what}s" if is_list else ("an " if what == "integer" else "a ") + what
        raise ValueError(f"{name} must be {what}, got {value!r}")
    items = [float(v) if base == "float" else v for v in items]
    return tuple(items) if is_list else items[0]


def _is(v, base: str) -> bool:
    if base == "float":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return type(v) is {"bool": bool, "int": int, "str": str}[base]


def _check(f, value) -> None:
    m = f.metadata
    values = value if isinstance(value, tuple) else (value,)
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
        raise ValueError(f"{f.name} must be finite, got {value}")
    lo_hi = m["range"]
    if lo_hi is not None and not lo_hi[0] <= value <= lo_hi[1]:
        raise ValueError(f"{f.name} must be in [{lo_hi[0]}, {lo_hi[1]}], got {value}")
    if m["choices"] and value not in m["choices"]:
        raise ValueError(f"{f.name} must be {m['constraint']}, got {value!r}")
    if m["check"] is not None and not m["check"](value):
        shown = list(value) if isinstance(value, tuple) else repr(value)
        raise ValueError(f"{f.name} must be {m['constraint']}, got {shown}")


def backend_options(backend: str) -> dict:
    """The node's extra options for loading with ``backend``: with fastest, torch's time is weighed by
    its measured slowdown inside the node (:data:`~fornet_ros.inference.backends.NODE_TORCH_FACTOR`).
    ``fornet bench-node``'s baseline alone loads with the same."""
    if backend != "fastest":
        return {}
    from ..inference.backends import NODE_TORCH_FACTOR
    return {"torch_factor": NODE_TORCH_FACTOR}


def build_segmenter(p: NodeParams):
    """(Segmenter, warning or None) for the parameters. With ``allow_untrained``, a checkpoint that
    cannot be loaded gives random weights and a warning; otherwise RuntimeError naming it."""
    from ..inference import Segmenter
    from ..inference.checkpoint import DEFAULT_INPUT_SIZE, CheckpointError, ModelMeta, default_checkpoint_path
    if p.threads:
        import torch
        torch.set_num_threads(p.threads)
    input_size = p.input_size if any(p.input_size) else None
    kw = dict(device=p.device, precision=p.precision, input_size=input_size, topk_ratio=p.topk_ratio,
              resize_mode=p.resize_mode, processing=p.processing, cuda_graphs=p.cuda_graphs)
    try:
        return Segmenter.from_checkpoint(p.checkpoint or None, backend=p.backend, **kw, **backend_options(p.backend)), None
    except CheckpointError as e:
        where = p.checkpoint or f"(default) {default_checkpoint_path()}"
        if not p.allow_untrained:
            raise RuntimeError(f"parameter 'checkpoint' = {where}: {e}") from e
        from ..model import create_model
        return (Segmenter(create_model("fornet_s"), ModelMeta.default(19, input_size or DEFAULT_INPUT_SIZE), **kw),
                f"parameter 'checkpoint' = {where}: {e}; allow_untrained is set, using RANDOM weights "
                "(outputs are meaningless)")
