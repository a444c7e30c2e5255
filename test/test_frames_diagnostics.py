"""The newest-frame mailbox, its counters and the diagnostics rules, on a fake clock (no ROS, no timing)."""

import threading

import pytest

from fornet_ros.node.diagnostics import ERROR, OK, WARN, camera_status
from fornet_ros.node.frames import CameraStats, FrameSlots
from fornet_ros.node.params import NodeParams


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_newest_frame_wins_and_overwrites_are_counted():
    clock = Clock()
    slots = FrameSlots(["cam0", "cam1"], clock=clock)
    for i in range(3):
        slots.put("cam0", f"a{i}")
    slots.put("cam1", "b0")
    taken = slots.take(timeout=0)
    assert [(c, f) for c, f, _ in taken] == [("cam0", "a2"), ("cam1", "b0")]
    assert slots.take(timeout=0) == []  # nothing pending any more
    s = slots.stats()
    assert (s["cam0"].received, s["cam0"].overwritten, s["cam1"].overwritten) == (3, 2, 0)


def test_done_dropped_latency_and_rates():
    clock = Clock()
    slots = FrameSlots(["cam"], clock=clock)
    slots.stats()  # start a window at t = 100
    slots.put("cam", "f0")
    [(cam, frame, t_rx)] = slots.take(timeout=0)
    clock.t += 0.25
    slots.done(cam, t_rx, infer_ms=200.0, input_age_ms=300.0)
    slots.put("cam", "f1")
    slots.take(timeout=0)
    slots.dropped("cam", "stale")
    slots.put("cam", "f2")
    slots.take(timeout=0)
    slots.dropped("cam", "bad")
    clock.t = 102.0
    s = slots.stats()["cam"]
    assert (s.received, s.processed, s.stale, s.bad) == (3, 1, 1, 1)
    assert s.latency_ms == (250.0,) and s.infer_ms == (200.0,) and s.input_age_ms == (300.0,)
    assert s.input_hz == pytest.approx(1.5) and s.processed_hz == pytest.approx(0.5)
    assert s.silent_s == pytest.approx(1.75)
    clock.t = 104.0
    s = slots.stats()["cam"]  # a new window: no frames in it
    assert (s.input_hz, s.processed_hz, s.received) == (0.0, 0.0, 3)


def test_take_wakes_on_put_and_on_close():
    slots = FrameSlots(["cam"])
    got = []
    t = threading.Thread(target=lambda: got.append(slots.take(timeout=10)))
    t.start()
    slots.put("cam", "f")
    t.join(5)
    assert got[0][0][:2] == ("cam", "f")
    t = threading.Thread(target=lambda: got.append(slots.take(timeout=10)))
    t.start()
    slots.close()
    t.join(5)
    assert got[1] == [] and not t.is_alive()


P = NodeParams(stale_timeout_s=2.0, latency_budget_ms=500.0)


@pytest.mark.parametrize("stats,level,message", [
    (CameraStats(), ERROR, "no images"),
    (CameraStats(received=5, silent_s=2.5, latency_ms=(10.0,)), ERROR, "stale: no image for 2.5 s"),
    (CameraStats(received=5, silent_s=1.9, latency_ms=(100.0,) * 90 + (900.0,) * 10), WARN,
     "p95 latency 900 ms > budget 500 ms"),
    (CameraStats(received=5, silent_s=0.1, latency_ms=(100.0,) * 99 + (900.0,)), OK, "ok"),
    (CameraStats(received=5, silent_s=0.1), OK, "ok"),  # no latency yet: not a WARN
])
def test_levels(stats, level, message):
    assert camera_status(stats, P)[:2] == (level, message)


def test_values_report_counters_and_percentiles():
    s = CameraStats(received=10, processed=7, overwritten=2, stale=1, bad=0, input_hz=5.0, processed_hz=3.5,
                    silent_s=0.1, infer_ms=(10.0, 20.0, 30.0), latency_ms=(40.0, 50.0, 60.0), input_age_ms=(70.0,))
    _, _, v = camera_status(s, P)
    assert v == {"input_hz": "5.00", "processed_hz": "3.50", "received": "10", "processed": "7",
                 "dropped_overwritten": "2", "dropped_stale": "1", "bad_messages": "0", "dropped_future_stamp": "0",
                 "zero_stamps": "0", "errors": "0", "lost_in_transport": "0", "last_problem": "", "inference_ms_p50": "20.0",
                 "inference_ms_p95": "29.0", "latency_ms_p50": "50.0", "latency_ms_p95": "59.0",
                 "input_age_ms_p50": "70.0"}
    assert camera_status(CameraStats(), P)[2]["latency_ms_p50"] == "nan"


def test_input_age_is_measured_only_when_stamp_and_clock_agree():
    from fornet_ros.node.frames import CLOCK_DISAGREEMENT_MS, input_age
    now = 1_700_000_000 * 10**9
    assert input_age(now - 30 * 10**6, now) == (30.0, "")
    assert input_age(0, now) == (None, "")  # a zero stamp: counted as zero_stamp elsewhere
    age, note = input_age(now, 0)  # use_sim_time before /clock
    assert age is None and "clock reads 0" in note
    age, note = input_age(now, 5 * 10**9)  # sim time at 5 s, camera on wall time
    assert age is None and note.startswith("input stamps are 1699999995 s ahead of the node's clock")
    age, note = input_age(5 * 10**9, now)  # a bag's old stamps, node on wall time
    assert age is None and "behind the node's clock" in note
    lim = int(CLOCK_DISAGREEMENT_MS * 1e6)
    assert input_age(now - lim + 1, now)[0] is not None and input_age(now - lim - 1, now)[0] is None


def test_clock_note_is_said_once_per_report_instead_of_a_meaningless_age():
    clock = Clock()
    slots = FrameSlots(["cam"], clock=clock)
    for _ in range(3):
        slots.put("cam", "f")
        (cam, _, t_rx), = slots.take(timeout=0)
        slots.done(cam, t_rx, infer_ms=10.0, input_age_ms=None, clock_note="input stamps are 9 s ahead")
    clock.t += 1.0
    s = slots.stats()["cam"]
    assert s.input_age_ms == () and s.clock_note == "input stamps are 9 s ahead"
    assert s.input_hz == pytest.approx(3.0) and s.processed_hz == pytest.approx(3.0)  # rates: the steady clock
    level, message, values = camera_status(s, NodeParams())
    assert message.count("input stamps are 9 s ahead") == 1 and message.startswith("ok; ")
    assert values["input_age_ms_p50"] == "nan" and values["processed"] == "3"
    assert slots.stats()["cam"].clock_note == ""  # a window without the problem says nothing


def test_rates_use_a_steady_clock_by_default():
    import time
    assert FrameSlots(["cam"]).clock is time.monotonic  # never the ROS clock (sim time may stand still)


@pytest.mark.parametrize("curve", [None, lambda k: 10.0 if k < 1 else 8.0])  # K = 1 the cheapest on this curve
def test_the_k_controller_value_names_the_k_it_saturated_at(curve):
    from types import SimpleNamespace
    from fornet_ros.node.diagnostics import model_values
    from fornet_ros.node.k_controller import LatencyKController
    ctrl = LatencyKController(1.0, 0.05, 0.5, k=0.25, cost=curve)
    for _ in range(40):
        ctrl.update(50.0)  # far over a 1 ms target
    seg = SimpleNamespace(device="cpu", backend="torch", provider="CPUExecutionProvider", cfg=SimpleNamespace(variant="v"),
                          runtime="torch", topk_ratio=ctrl.k, paths=None)
    want = "0.05" if curve is None else "1"
    assert model_values(seg, ctrl)["k_controller"] == f"target 1 ms, p95 50.0 ms, SATURATED at K {want} (the cheapest)"
    assert model_values(seg, None)["k_controller"] == "off"
