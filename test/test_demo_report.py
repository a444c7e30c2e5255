"""The demo's numbers and sentences without DDS: the node's /diagnostics read over the playback, and
what the report says about the playback mode and the refined regions."""

from types import SimpleNamespace as NS

from fornet_ros.tools.demo_input import node_diagnostics
from fornet_ros.tools.demo_report import report_text


def _report(input_hz, processed, level=0, cam="camera"):
    values = [NS(key="input_hz", value=f"{input_hz:.2f}"), NS(key="processed_hz", value=f"{input_hz:.2f}"),
              NS(key="processed", value=str(processed)), NS(key="topk_ratio", value="1.0")]
    return NS(status=[NS(name="fornet_ros: other", level=b"\x02", message="no images", values=[]),
                      NS(name=f"fornet_ros: {cam}", level=bytes([level]), message="ok", values=values)])


def test_node_rates_come_from_the_playback_not_the_idle_report_after_it():
    """The last report, after playback, says input 0.00 Hz at level OK: its counters are kept (every
    frame counted) but the rates are the mean of the reports received while frames were sent."""
    reports = [(0.5, _report(0.0, 0)), (1.5, _report(2.0, 2)), (2.5, _report(4.0, 6)), (3.5, _report(0.0, 8))]
    d = node_diagnostics(reports, "camera", playing=(1.0, 3.0))
    assert d["processed"] == "8" and d["level"] == 0 and d["message"] == "ok"  # the final counters
    assert d["input_hz"] == "3.00" and d["processed_hz"] == "3.00"
    assert d["rates_over"] == "playback: mean of 2 report(s)"
    none = node_diagnostics(reports, "camera", playing=(10.0, 11.0))
    assert none["input_hz"] is None and "no report" in none["rates_over"]
    assert node_diagnostics(reports, "camera")["input_hz"] == "0.00"  # without a playback window: as reported
    assert node_diagnostics([], "camera") == {}


def _summary(**kw):
    s = {"input": "clip", "camera": "camera", "frames_in_bag": 10, "rate": 1.0, "compressed": False,
         "camera_pose": None, "frames_segmented": 10, "frames_scored": 10, "checkpoint": "packaged default",
         "selected_regions": "local Segmenter (same checkpoint)", "images_sent": 10, "frames": [{"stamp": 0}],
         "node_diagnostics": {"topk_ratio": "0.25"},
         "timing": {k: None for k in ("input_hz", "output_hz", "node_latency_ms_p50", "node_latency_ms_p95",
                                      "inference_ms_p50", "e2e_latency_ms_p50", "e2e_latency_ms_p95",
                                      "input_age_ms_p50_bag_clock")} | {"not_segmented": 0, "drops": {}}}
    return s | kw


def test_report_says_how_the_bag_was_played_and_what_k_1_refines():
    paced = report_text(_summary(playback="paced"))
    assert "paced: each image published once the node had answered the previous one" in paced["input"]
    recorded = report_text(_summary(playback="recorded"))
    assert "at the recorded timing" in recorded["input"] and "paced" not in recorded["input"]
    assert "cyan outlines" in paced["selected"]
    k1 = report_text(_summary(playback="paced", node_diagnostics={"topk_ratio": "1.0"}))
    assert "every region is refined" in k1["selected"] and "cyan outlines" not in k1["selected"]
    assert "each picture carries this key" in k1["costmap"] and "display only" in k1["costmap"]
