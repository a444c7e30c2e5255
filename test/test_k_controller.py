"""The deadline-aware K controller on a simulated plant: latency = base + slope * K + noise, with
a load step (the base cost doubles, as when a second process takes half the CPU)."""

import numpy as np
import pytest

from fornet_ros.node.k_controller import LatencyKController


def simulate(ctrl, base, slope=80.0, noise=3.0, seed=0):
    rng = np.random.default_rng(seed)
    ks, lat = [], []
    for b in base:
        latency = b + slope * ctrl.k + rng.normal(0, noise)
        lat.append(latency)
        ks.append(ctrl.k)
        ctrl.update(latency)
    return np.array(ks), np.array(lat)


def test_holds_p95_under_target_across_a_load_step_without_oscillating():
    base = np.r_[np.full(300, 40.0), np.full(300, 75.0), np.full(300, 40.0)]  # load on at 300, off at 600
    ctrl = LatencyKController(target_ms=100.0, k_min=0.05, k_max=0.6, k=0.25)
    ks, lat = simulate(ctrl, base)
    for lo, hi in ((150, 300), (450, 600), (750, 900)):  # settled parts of each phase
        assert np.percentile(lat[lo:hi], 95) <= 100.0
        assert np.ptp(ks[lo:hi]) <= 0.1  # calm: small K range once settled
        dk = np.diff(ks[lo:hi])
        assert np.count_nonzero(dk) <= 6  # few adjustments, not a limit cycle
    assert ks[450:600].mean() < ks[150:300].mean() - 0.1  # K gave way under load...
    assert ks[750:900].mean() > ks[450:600].mean() + 0.1  # ...and came back after it
    # fixed K = 0.6 (the controller's ceiling, pinned) on the same plant overshoots under the same load
    _, fixed_lat = simulate(LatencyKController(target_ms=100.0, k_min=0.6, k_max=0.6, k=0.6), base)
    assert np.percentile(fixed_lat[450:600], 95) > 100.0 >= np.percentile(lat[450:600], 95)


def test_respects_bounds_and_reports_saturation():
    ctrl = LatencyKController(target_ms=50.0, k_min=0.1, k_max=0.5, k=0.3)
    ks, _ = simulate(ctrl, np.full(400, 90.0))  # even K = 0.1 is too slow
    assert ks.min() >= 0.1 and ks[-1] == pytest.approx(0.1) and ctrl.saturated
    ctrl = LatencyKController(target_ms=500.0, k_min=0.1, k_max=0.5, k=0.3)
    ks, _ = simulate(ctrl, np.full(400, 10.0))  # plenty of head-room: K rises to its ceiling, not beyond
    assert ks.max() <= 0.5 and ks[-1] == pytest.approx(0.5) and not ctrl.saturated


def test_changes_are_rate_limited():
    ctrl = LatencyKController(target_ms=100.0, k_min=0.0, k_max=1.0, k=1.0, max_step=0.05)
    ks, _ = simulate(ctrl, np.full(200, 150.0), noise=0.0)
    assert np.abs(np.diff(ks)).max() <= 0.05 + 1e-12


def test_bad_settings():
    with pytest.raises(ValueError):
        LatencyKController(target_ms=0)
    with pytest.raises(ValueError):
        LatencyKController(target_ms=10, k_min=0.6, k_max=0.2)
    with pytest.raises(ValueError):
        LatencyKController(target_ms=10, probe_every=0)
    with pytest.raises(ValueError):
        LatencyKController(target_ms=10, probe_every=16, probe_max=8)


def test_the_first_frames_are_not_measured():
    ctrl = LatencyKController(target_ms=100.0, k_min=0.0, k_max=1.0, k=1.0, skip=10)
    for _ in range(10):  # a slow start (allocations, first calls): K stays
        assert ctrl.update(500.0) == 1.0
    assert ctrl.p95_ms is None
    for _ in range(40):
        ctrl.update(80.0)  # then the frames meet the target: K = 1 kept
    assert ctrl.k == 1.0 and ctrl.p95_ms == 80.0
    ctrl = LatencyKController(target_ms=100.0, k_min=0.0, k_max=1.0, k=1.0, skip=0)
    for _ in range(10):
        ctrl.update(500.0)  # measured from the first frame: the slow start moves K down
    assert ctrl.k < 1.0

