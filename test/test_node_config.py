"""The node's parameter table: validation, run-time rules, and config/fornet.yaml (no ROS needed)."""

import math
from pathlib import Path

import pytest
import yaml

from fornet_ros.node.params import CAMERA_POSE, PER_CAMERA, SPECS, NodeParams, camera_param_name

ROOT = Path(__file__).resolve().parents[1]


def test_params_file_equals_the_defaults():
    params = yaml.safe_load((ROOT / "config" / "fornet.yaml").read_text())["/**"]["ros__parameters"]
    per_camera = {camera_param_name(spec, "camera"): spec.default for spec in PER_CAMERA}
    table = {k: v for k, v in params.items() if k not in per_camera}
    assert table == {name: s.default for name, s in SPECS.items()}
    assert {k: params[k] for k in per_camera} == per_camera
    assert params["camera_pose.camera"] == CAMERA_POSE.default
    marked = {line.split(":")[0].strip() for line in (ROOT / "config" / "fornet.yaml").read_text().splitlines()
              if "(run-time)" in line and not line.lstrip().startswith("#")}
    assert marked == {name for name, s in SPECS.items() if s.runtime}


def test_every_parameter_is_described_and_numbers_have_ranges():
    for s in SPECS.values():
        assert s.description, s.name
        if s.type in ("int", "float"):
            assert s.range is not None and s.range[0] <= s.default <= s.range[1], s.name
    assert {s.name for s in SPECS.values() if s.runtime} == {
        "topk_ratio", "max_input_age_ms", "max_stamp_ahead_ms", "latency_budget_ms", "latency_target_ms", "k_min", "k_max",
        "stale_timeout_s", "publish_color", "publish_overlay", "overlay_alpha",
        "publish_importance", "publish_confidence", "publish_camera_info"}


@pytest.mark.parametrize("name,value,msg", [
    ("stale_timeout_s", math.nan, "stale_timeout_s must be finite"),
    ("latency_budget_ms", math.nan, "latency_budget_ms must be finite"),
    ("max_input_age_ms", math.inf, "max_input_age_ms must be finite"),
    ("grid_origin", [0.0, math.nan], "grid_origin must be finite"),
    ("max_input_age_ms", -5.0, r"max_input_age_ms must be in \[0.0, "),
    ("topk_ratio", 9.0, r"topk_ratio must be in \[-1.0, 1.0\]"),
    ("topk_ratio", "0.5", "topk_ratio must be a number"),
    ("input_depth", 0, r"input_depth must be in \[1, 100\]"),
    ("input_depth", 1.5, "input_depth must be an integer"),
    ("device", "tpu", "device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    ("precision", "fp8", "precision must be one of auto, fp32, fp16, bf16"),
    ("input_size", [4, 4], r"input_size must be \[0, 0\] or \[H, W\]"),
    ("cameras", ["a", "a"], "cameras must be a non-empty list of distinct"),
    ("cameras", [], "cameras must be a non-empty list"),
    ("cameras", ["bad name"], "cameras must be"),
    ("grid_origin", [1.0], r"grid_origin must be \[x, y\]"),
    ("input_reliability", "sometimes", "input_reliability must be one of reliable, best_effort"),
    ("compressed", 1, "compressed must be a bool"),
    ("nonsense", 1, "unknown parameter 'nonsense'"),
    ("input_bit_depth", 4, "input_bit_depth must be 0 or 8..16"),
    ("generic_color_order", "grb", "generic_color_order must be one of reject, bgr, rgb"),
    ("max_input_pixels", 0, r"max_input_pixels must be in \[1, "),
])
def test_invalid_values_are_rejected_with_the_parameter_name(name, value, msg):
    with pytest.raises(ValueError, match=msg):
        NodeParams.from_values({name: value})


def test_ros_values_are_converted():
    p = NodeParams.from_values({"topk_ratio": 1, "grid_origin": [0, -5], "input_size": [64, 128],
                                "cameras": ["cam0", "cam1"]})
    assert p.topk_ratio == 1.0 and isinstance(p.topk_ratio, float)
    assert p.grid_origin == (0.0, -5.0) and p.input_size == (64, 128) and p.cameras == ("cam0", "cam1")


def test_run_time_changes():
    p = NodeParams()
    q = p.changed({"topk_ratio": -0.5, "latency_budget_ms": 10})
    assert (q.topk_ratio, q.latency_budget_ms, p.topk_ratio) == (-0.5, 10.0, -1.0)
    with pytest.raises(ValueError, match="device cannot change while the node runs"):
        p.changed({"device": "cpu"})
    with pytest.raises(ValueError, match="stale_timeout_s must be finite"):
        p.changed({"stale_timeout_s": math.nan})


def test_build_segmenter_falls_back_only_when_allowed(tmp_path):
    from fornet_ros.node.params import build_segmenter
    missing = str(tmp_path / "nope.pt")
    with pytest.raises(RuntimeError, match=f"parameter 'checkpoint' = {missing}: checkpoint not found"):
        build_segmenter(NodeParams(checkpoint=missing, device="cpu"))
    seg, warning = build_segmenter(NodeParams(checkpoint=missing, device="cpu", allow_untrained=True,
                                              input_size=(64, 128), topk_ratio=0.5))
    assert "RANDOM weights" in warning and missing in warning
    assert (len(seg.classes), seg.input_size, seg.topk_ratio) == (19, (64, 128), 0.5)
