"""The node's /diagnostics rules as a pure function of a camera's counters and the parameters."""

from __future__ import annotations

import numpy as np

from .frames import CameraStats

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


def percentile(values, q: float) -> float:
    """``q``-th percentile (0..100) of ``values``; NaN when there are none."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def camera_status(stats: CameraStats, params) -> tuple[int, str, dict[str, str]]:
    """(level, message, values) of one camera. ERROR when it sent nothing for ``stale_timeout_s``
    (or ever), or processing raised since the previous report; WARN when frames came with bad
    stamps (zero, future) or were lost in transport since the previous report, or when the p95
    latency exceeds ``latency_budget_ms``; else OK."""
    p95 = percentile(stats.latency_ms, 95)
    if stats.silent_s is None:
        level, message = ERROR, "no images"
    elif stats.silent_s > params.stale_timeout_s:
        level, message = ERROR, f"stale: no image for {stats.silent_s:.1f} s"
    elif stats.window_errors:
        level, message = ERROR, f"{stats.window_errors} processing error(s), last {stats.last_problem}"
    elif stats.window_warnings:
        level, message = WARN, f"{stats.window_warnings} bad-stamp or lost frame(s), last {stats.last_problem}"
    elif p95 > params.latency_budget_ms:
        level, message = WARN, f"p95 latency {p95:.0f} ms > budget {params.latency_budget_ms:.0f} ms"
    else:
        level, message = OK, "ok"
    if stats.clock_note:  # the ages are not measured, and why: once per report, not as a number
        message = f"{message}; {stats.clock_note}"
    values = {
        "input_hz": f"{stats.input_hz:.2f}", "processed_hz": f"{stats.processed_hz:.2f}",
        "received": str(stats.received), "processed": str(stats.processed),
        "dropped_overwritten": str(stats.overwritten), "dropped_stale": str(stats.stale),
        "bad_messages": str(stats.bad), "dropped_future_stamp": str(stats.future),
        "zero_stamps": str(stats.zero_stamp), "errors": str(stats.errors), "lost_in_transport": str(stats.lost),
        "last_problem": stats.last_problem,
        "inference_ms_p50": f"{percentile(stats.infer_ms, 50):.1f}",
        "inference_ms_p95": f"{percentile(stats.infer_ms, 95):.1f}",
        "latency_ms_p50": f"{percentile(stats.latency_ms, 50):.1f}", "latency_ms_p95": f"{p95:.1f}",
        "input_age_ms_p50": f"{percentile(stats.input_age_ms, 50):.1f}",  # nan: none measured (clock_note)
        **{f"not_published_{out}": str(n) for out, n in stats.skipped},
    }
    return level, message, values


def model_values(segmenter, k_ctrl) -> dict[str, str]:
    """The model's part of every camera's /diagnostics values: where it runs and the K in use."""
    s, c = segmenter, k_ctrl
    return {"device": str(s.device), "backend": s.backend, "provider": s.provider, "model": s.cfg.variant,
            # backend fastest: ONNX Runtime at the K it was exported for, torch at any other
            "runtime": s.runtime,
            "topk_ratio": f"{s.topk_ratio:g}",
            "focus_path": getattr(getattr(s, "paths", None), "last", None) or "n/a",  # sparse, dense, none
            "k_controller": "off" if c is None else (f"target {c.target_ms:g} ms, p95 {c.p95_ms or 0:.1f} ms"
                                                     + (f", SATURATED at K {c.k:g} (the cheapest)" if c.saturated else "")
                                                     + (f", {c.probes} probes up" if c.probes else ""))}
