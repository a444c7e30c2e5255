"""The node's per-frame path without ROS (fornet_ros.node.pipeline): what is published, what is counted,
and that one camera's or one batch's failure costs only that camera or batch. A fake segmenter and
sink make every failure reproducible; the DDS tests keep what only DDS can show."""

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from fornet_ros.classes import CITYSCAPES_PALETTE, colorize
from fornet_ros.node.frames import FrameSlots
from fornet_ros.inference import Segmentation, Segmenter
from fornet_ros.node.params import NodeParams
from fornet_ros.node.pipeline import IMAGE_OUTPUTS, FramePipeline, render

NOW = 1_700_000_000 * 10**9


def image_msg(value=10, stamp_ns=NOW, h=4, w=6, encoding="rgb8"):
    stamp = SimpleNamespace(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp), encoding=encoding, height=h, width=w, step=3 * w,
                           is_bigendian=0, data=bytes([value]) * (3 * h * w))


class FakeSegmenter:
    """Labels = the image's first byte; importance/confidence only when asked; K as a property."""

    palette = CITYSCAPES_PALETTE
    backend = "torch"

    def __init__(self, model_k=0.125, delay_s=0.0, fail=False):
        self.model_k, self.delay_s, self.fail, self._k = model_k, delay_s, fail, model_k
        self.runner = SimpleNamespace(default_topk=model_k)
        self.calls = []

    @property
    def topk_ratio(self):
        return self._k

    @topk_ratio.setter
    def topk_ratio(self, k):
        self._k = self.resolve_topk(k)

    resolve_topk = Segmenter.resolve_topk  # the real rule (it reads backend and runner.default_topk)

    def __call__(self, images, outputs=()):
        self.calls.append((len(images), set(outputs)))
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("CUDA out of memory")
        out = []
        for img in images:
            lab = np.full(img.shape[:2], img[0, 0, 0] % 19, np.uint8)
            f = np.full(img.shape[:2], 0.5, np.float32)
            out.append(Segmentation(lab, f if "importance" in outputs else None,
                                    f if "confidence" in outputs else None, None))
        return out


class FakeSink:
    def __init__(self, wanted=("labels",), fail_publish=(), fail_costmap=False, fail_points=()):
        self.wanted_outputs, self.fail_publish, self.fail_costmap, self.fail_points = (
            set(wanted), set(fail_publish), fail_costmap, set(fail_points))
        self.published, self.fused, self.k, self.pointed = [], [], [], []

    def wanted(self, cam, out):
        return out in self.wanted_outputs

    def publish(self, cam, header, arrays):
        if cam in self.fail_publish:
            raise OSError("publisher gone")
        self.published.append((cam, header, {k: (a.copy(), e) for k, (a, e) in arrays.items()}))

    def points(self, cam, header, result):
        if cam in self.fail_points:
            raise ValueError("depth image 3x3 does not match")
        self.pointed.append(cam)

    def costmap(self, published):
        if self.fail_costmap:
            raise RuntimeError("tf exploded")
        self.fused.append([cam for cam, *_ in published])
        return {}

    def topk_changed(self, k):
        self.k.append(k)


class FakeLog:
    def __init__(self):
        self.lines = []

    def warning(self, message, **kw):
        self.lines.append(("warning", message))

    def error(self, message, **kw):
        self.lines.append(("error", message))


def make(cams=("cam0", "cam1"), segmenter=None, sink=None, now=NOW, **params):
    slots = FrameSlots(list(cams))
    p = NodeParams(cameras=list(cams), **params)
    seg, sink = segmenter or FakeSegmenter(), sink or FakeSink()
    return FramePipeline(seg, slots, p, sink, FakeLog(), lambda: now), slots, seg, sink


def run_once(pipe, slots, frames):
    for cam, msg in frames:
        slots.put(cam, msg)
    pipe.process(slots.take(timeout=1.0))
    return slots.stats()


def test_every_admitted_camera_is_segmented_in_one_call_and_published_with_its_header():
    pipe, slots, seg, sink = make()
    m0, m1 = image_msg(3), image_msg(7)
    stats = run_once(pipe, slots, [("cam0", m0), ("cam1", m1)])
    assert seg.calls == [(2, set())]  # one batch; nobody wants importance/confidence: not computed
    assert [(c, h) for c, h, _ in sink.published] == [("cam0", m0.header), ("cam1", m1.header)]
    assert [int(a["labels"][0][0, 0]) for *_, a in sink.published] == [3, 7]
    assert all(set(a) == {"labels"} for *_, a in sink.published)
    assert sink.fused == [["cam0", "cam1"]]
    assert stats["cam0"].processed == stats["cam1"].processed == 1
    assert dict(stats["cam0"].skipped) == {"color": 1, "importance": 1, "confidence": 1, "overlay": 1}


def test_bad_stamps_and_images_are_dropped_and_counted_while_the_other_camera_is_published():
    pipe, slots, _, sink = make(max_stamp_ahead_ms=500.0)
    stats = run_once(pipe, slots, [("cam0", image_msg(stamp_ns=NOW + 3600 * 10**9)), ("cam1", image_msg(5))])
    assert stats["cam0"].future == 1 and stats["cam0"].processed == 0 and "ahead" in stats["cam0"].last_problem
    assert [c for c, *_ in sink.published] == ["cam1"] and stats["cam1"].processed == 1
    bad = image_msg()
    bad.data = bad.data[:-1]  # one byte short
    stats = run_once(pipe, slots, [("cam0", bad), ("cam1", image_msg(stamp_ns=0))])
    assert stats["cam0"].bad == 1 and stats["cam0"].processed == 0
    assert stats["cam1"].zero_stamp == 1 and stats["cam1"].processed == 2  # flagged, not dropped (age check off)


def test_stale_frames_are_dropped_only_with_a_clock_and_an_age_limit():
    pipe, slots, *_ = make(max_input_age_ms=100.0)
    assert run_once(pipe, slots, [("cam0", image_msg(stamp_ns=NOW - 200 * 10**6))])["cam0"].stale == 1
    pipe, slots, *_ = make(max_input_age_ms=100.0, now=0)  # use_sim_time before /clock: no age known
    assert run_once(pipe, slots, [("cam0", image_msg(stamp_ns=NOW - 200 * 10**6))])["cam0"].processed == 1


def test_an_inference_exception_is_every_batch_cameras_error_and_publishes_nothing():
    pipe, slots, _, sink = make(segmenter=FakeSegmenter(fail=True))
    stats = run_once(pipe, slots, [("cam0", image_msg()), ("cam1", image_msg())])
    assert sink.published == [] and sink.fused == []
    for s in stats.values():
        assert s.errors == 1 and s.processed == 0 and s.last_problem.startswith("errors: inference: RuntimeError")


def test_one_cameras_publish_or_points_failure_costs_only_that_camera():
    sink = FakeSink(fail_publish={"cam0"}, fail_points={"cam1"})
    pipe, slots, *_ = make(sink=sink)
    stats = run_once(pipe, slots, [("cam0", image_msg()), ("cam1", image_msg())])
    assert stats["cam0"].errors == 1 and stats["cam0"].processed == 0
    assert stats["cam0"].last_problem == "errors: publish: OSError: publisher gone"
    # cam1 was published (so processed) and fused; its points failed: counted as its error
    assert stats["cam1"].processed == 1 and stats["cam1"].errors == 1 and "points: ValueError" in stats["cam1"].last_problem
    assert sink.fused == [["cam1"]]


def test_a_costmap_failure_is_an_error_of_the_published_cameras_which_stay_processed():
    pipe, slots, _, sink = make(sink=FakeSink(fail_costmap=True))
    stats = run_once(pipe, slots, [("cam0", image_msg()), ("cam1", image_msg())])
    for s in stats.values():
        assert s.processed == 1 and s.errors == 1 and s.last_problem == "errors: costmap: RuntimeError: tf exploded"


def test_optional_outputs_are_computed_only_when_some_camera_wants_them():
    sink = FakeSink(wanted=("labels", "confidence", "color", "overlay"))
    pipe, slots, seg, _ = make(sink=sink)
    stats = run_once(pipe, slots, [("cam0", image_msg(2))])
    assert seg.calls == [(1, {"confidence"})]
    arrays = sink.published[0][2]
    assert set(arrays) == {"labels", "confidence", "color", "overlay"}
    assert arrays["confidence"][0].dtype == np.uint8 and int(arrays["confidence"][0][0, 0]) == 128  # rint(0.5*255)
    assert (arrays["color"][0] == colorize(arrays["labels"][0], CITYSCAPES_PALETTE)).all()
    assert dict(stats["cam0"].skipped) == {"importance": 1}


def test_render_overlay_blends_with_alpha_and_a_late_subscriber_is_skipped_not_crashed():
    rgb = np.full((2, 3, 3), 200, np.uint8)
    r = Segmentation(np.zeros((2, 3), np.uint8), None, None, None)  # class 0 = road (128, 64, 128)
    arrays, skipped = render(r, rgb, {"labels", "overlay", "importance"}, CITYSCAPES_PALETTE, 0.25)
    assert arrays["overlay"][1] == "rgb8"
    assert arrays["overlay"][0][0, 0].tolist() == [182, 166, 182]  # 0.75*200 + 0.25*colour
    assert skipped == ["color", "importance", "confidence"]


def test_negative_topk_selects_the_models_k_and_the_latency_controller_lowers_k_under_load():
    seg = FakeSegmenter(model_k=0.125)
    pipe, slots, _, sink = make(cams=("cam0",), segmenter=seg, topk_ratio=-1.0)
    assert seg.topk_ratio == 0.125 and sink.k == [0.125]
    pipe.configure(pipe.params.changed({"latency_target_ms": 1.0, "k_min": 0.05, "k_max": 0.5, "topk_ratio": 0.5}))
    assert pipe.k_ctrl is not None and seg.topk_ratio == 0.5
    seg.delay_s = 0.01  # 10 ms per frame against a 1 ms target
    for _ in range(20):
        run_once(pipe, slots, [("cam0", image_msg())])
    assert seg.topk_ratio < 0.5 and sink.k[-1] == seg.topk_ratio and len(sink.k) > 2
    pipe.configure(pipe.params.changed({"latency_target_ms": 0.0, "topk_ratio": 0.25}))
    assert pipe.k_ctrl is None and seg.topk_ratio == 0.25 and sink.k[-1] == 0.25
    pipe.configure(pipe.params.changed({"stale_timeout_s": 3.0}), k_changed=False)
    assert seg.topk_ratio == 0.25 and sink.k[-1] == 0.25


def test_the_worker_loop_survives_a_failing_batch_and_ends_when_the_slots_close():
    pipe, slots, _, sink = make(cams=("cam0",))
    calls = []
    real = pipe.process

    def flaky(taken):
        calls.append(len(taken))
        if len(calls) == 1:
            raise KeyError("boom")
        real(taken)

    pipe.process = flaky
    worker = threading.Thread(target=pipe.run)
    worker.start()
    slots.put("cam0", image_msg())
    deadline = time.monotonic() + 5
    while len(calls) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    slots.put("cam0", image_msg(4))
    while not sink.published and time.monotonic() < deadline:
        time.sleep(0.01)
    slots.close()
    worker.join(timeout=5)
    assert not worker.is_alive()
    stats = slots.stats()["cam0"]
    assert stats.errors == 1 and "KeyError" in stats.last_problem and stats.processed == 1
    assert ("error", "processing failed: KeyError: 'boom'") in pipe.log.lines


def test_nothing_is_published_once_stopping():
    pipe, slots, _, sink = make()
    pipe.stopping.set()
    run_once(pipe, slots, [("cam0", image_msg()), ("cam1", image_msg())])
    assert sink.published == [] and sink.fused == []


def test_the_latency_controller_is_refused_on_a_backend_with_fixed_k():
    seg = FakeSegmenter()
    seg.backend = "onnxruntime"
    with pytest.raises(ValueError, match="latency_target_ms needs the torch backend"):
        make(cams=("cam0",), segmenter=seg, latency_target_ms=100.0)
    pipe, *_ = make(cams=("cam0",), segmenter=seg)  # the model's own K: fine
    with pytest.raises(ValueError, match="torch backend"):
        pipe.configure(pipe.params.changed({"latency_target_ms": 50.0}))
    with pytest.raises(ValueError, match="exported with K = 0.125"):  # nor another fixed K
        pipe.configure(pipe.params.changed({"topk_ratio": 0.5}))
    assert pipe.params.topk_ratio == -1.0 and pipe.params.latency_target_ms == 0.0  # nothing taken over
    pipe.configure(pipe.params.changed({"topk_ratio": 0.125}))
    assert seg.topk_ratio == 0.125


def test_a_rendering_error_costs_only_that_camera():
    pipe, slots, _, sink = make(sink=FakeSink(wanted=("labels", "overlay")))
    bad = image_msg(3)
    real = pipe._render_and_publish

    def flaky(cam, header, result, rgb, wanted):
        if cam == "cam0":
            raise ValueError("overlay: shapes differ")
        return real(cam, header, result, rgb, wanted)
    pipe._render_and_publish = flaky
    stats = run_once(pipe, slots, [("cam0", bad), ("cam1", image_msg(5))])
    assert stats["cam0"].errors == 1 and stats["cam0"].processed == 0 and stats["cam0"].received == 1
    assert [c for c, *_ in sink.published] == ["cam1"] and sink.fused == [["cam1"]]
    assert stats["cam1"].processed == 1 and stats["cam1"].errors == 0


def test_a_controller_replaced_during_its_update_does_not_write_its_k_back():
    """The executor thread may switch the controller off while the worker updates it: the old
    controller's K must not overwrite the new hand-set K."""
    seg = FakeSegmenter()
    pipe, slots, _, sink = make(cams=("cam0",), segmenter=seg, latency_target_ms=1.0, k_min=0.05, k_max=0.5,
                                topk_ratio=0.5)
    old = pipe.k_ctrl
    real_update = old.update

    def update_then_switch_off(latency_ms, network_ms=None):
        k_before = old.k
        real_update(latency_ms, network_ms)
        if old.k != k_before and pipe.k_ctrl is old:  # a parameter change lands just as K moves
            pipe.configure(pipe.params.changed({"latency_target_ms": 0.0, "topk_ratio": 0.3}))
    old.update = update_then_switch_off
    seg.delay_s = 0.01
    for _ in range(old.skip + 10):  # the controller measures from its 11th frame on
        run_once(pipe, slots, [("cam0", image_msg())])
    assert pipe.k_ctrl is None and seg.topk_ratio == 0.3 and sink.k[-1] == 0.3


def test_input_age_under_sim_time_is_not_a_number_but_a_note():
    """use_sim_time before /clock (node clock 0), and sim time vs a camera on wall time: frames are
    processed, no age is recorded, the camera's stats say why (issue #21)."""
    pipe, slots, *_ = make(cams=("cam0",), now=0)
    s = run_once(pipe, slots, [("cam0", image_msg(stamp_ns=NOW))])["cam0"]
    assert s.processed == 1 and s.input_age_ms == () and "clock reads 0" in s.clock_note
    pipe, slots, *_ = make(cams=("cam0",), now=NOW - 3600 * 10**9, max_stamp_ahead_ms=0.0)  # (default: dropped)
    s = run_once(pipe, slots, [("cam0", image_msg(stamp_ns=NOW))])["cam0"]
    assert s.processed == 1 and s.input_age_ms == () and "3600 s ahead of the node's clock" in s.clock_note
    pipe, slots, *_ = make(cams=("cam0",))
    s = run_once(pipe, slots, [("cam0", image_msg(stamp_ns=NOW - 20 * 10**6))])["cam0"]
    assert s.input_age_ms == (20.0,) and s.clock_note == ""


def test_labelled_clouds_make_the_pipeline_compute_confidence():
    pipe, slots, seg, _ = make(cams=("cam0",), sink=FakeSink(wanted=("labels", "points")))
    run_once(pipe, slots, [("cam0", image_msg())])
    assert seg.calls == [(1, {"confidence"})]


def test_a_camera_stretched_far_from_the_input_aspect_is_warned_about_once_per_size():
    from fornet_ros.node.pipeline import aspect_warning
    assert aspect_warning((1024, 2048), (448, 896), "stretch") is None  # 2:1 on 2:1
    assert aspect_warning((480, 640), (448, 896), "letterbox") is None  # letterbox keeps the aspect
    assert aspect_warning((720, 1280), (448, 896), "stretch") is None  # 16:9 on 2:1: within 15 %
    msg = aspect_warning((480, 640), (448, 896), "stretch")
    assert msg.startswith("640x480 frames (1.33:1) are stretched to the network input 896x448 (2.00:1)") and "[360, 480]" in msg
    seg = FakeSegmenter()
    seg.input_size, seg.resize_mode = (448, 896), "stretch"
    pipe, slots, _, sink = make(segmenter=seg)
    for _ in range(2):
        run_once(pipe, slots, [("cam0", image_msg(h=6, w=8)), ("cam1", image_msg(h=4, w=8))])
    warned = [m for kind, m in pipe.log.lines if kind == "warning"]
    assert len(warned) == 1 and warned[0].startswith("cam0: 8x6 frames (1.33:1)")  # cam1 is 2:1; once per size
    run_once(pipe, slots, [("cam0", image_msg(h=8, w=8))])
    assert len([m for kind, m in pipe.log.lines if kind == "warning"]) == 2 and len(sink.published) == 5


def test_the_k_controller_gets_the_segmenter_call_each_frame_waited_for():
    """Each frame's latency holds the whole Segmenter call of its batch (not its share of it): the
    controller scales that call's time when it predicts another K."""
    seg = FakeSegmenter(delay_s=0.04)
    pipe, slots, _, _ = make(segmenter=seg, latency_target_ms=1000.0, k_min=0.05, k_max=0.5, topk_ratio=0.25)
    seen = []
    real = pipe.k_ctrl.update
    pipe.k_ctrl.update = lambda lat, net=None: (seen.append((lat, net)), real(lat, net))[1]
    stats = run_once(pipe, slots, [("cam0", image_msg()), ("cam1", image_msg())])  # two frames, one call
    per_frame = stats["cam0"].infer_ms[-1]  # the accounting's share of the call per frame
    stats = run_once(pipe, slots, [("cam0", image_msg())])  # one frame, one call
    assert len(seen) == 3 and seen[0][1] == seen[1][1] == pytest.approx(2 * per_frame) and seen[0][1] >= 40.0
    assert seen[2][1] == pytest.approx(stats["cam0"].infer_ms[-1]) and seen[2][1] >= 40.0


def test_every_image_output_has_its_encoding():
    from fornet_ros.node.pipeline import ENCODING
    assert list(ENCODING) == list(IMAGE_OUTPUTS) and set(ENCODING.values()) == {"mono8", "rgb8"}
