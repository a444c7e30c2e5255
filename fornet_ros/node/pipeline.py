"""The node's per-frame path, without ROS: admit -> one batched segmentation -> output arrays ->
hand-over, then the accounting and the latency K controller.

Data flows one way: the ROS adapter (:mod:`fornet_ros.ros.node`) puts messages into
:class:`~fornet_ros.node.frames.FrameSlots`; :meth:`FramePipeline.process` takes them, checks the
header stamp (:func:`~fornet_ros.node.frames.stamp_verdict`), decodes (:mod:`fornet_ros.node.images`),
segments every admitted camera in one :class:`~fornet_ros.inference.Segmenter` call, renders the
wanted outputs as arrays (:func:`render`) and gives them to the adapter's :class:`Sink`, which
turns them into messages. Only the sink knows ROS, so everything here runs in unit tests with a
fake sink (``test/test_pipeline.py``).

Failures are per frame and per camera: a bad stamp or image is counted and dropped; an exception
while segmenting, publishing, projecting points or updating the costmap is counted as that
camera's error (/diagnostics ERROR) and never stops the worker, the other cameras or the counters.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import cv2
import numpy as np

from ..classes import colorize
from .frames import FrameSlots, input_age, stamp_ns, stamp_verdict
from .images import BadImageError, DecodeOptions, to_rgb
from .k_controller import LatencyKController

IMAGE_OUTPUTS = ("labels", "color", "importance", "confidence", "overlay")  # per-camera image outputs
ENCODING = {"labels": "mono8", "color": "rgb8", "importance": "mono8", "confidence": "mono8", "overlay": "rgb8"}


class Log(Protocol):
    """The part of rclpy's logger the pipeline uses (``throttle_duration_sec`` as rclpy spells it)."""

    def warning(self, message: str, **kw) -> None: ...
    def error(self, message: str, **kw) -> None: ...


class Sink(Protocol):
    """What the adapter does with the pipeline's arrays (the ROS node: publishers)."""

    def wanted(self, cam: str, out: str) -> bool:
        """Is output ``out`` of ``cam`` enabled and subscribed? (lazy outputs; ``points``: any
        labelled cloud this camera's frames make - depth or LiDAR - which then needs confidence)"""

    def publish(self, cam: str, header, arrays: dict[str, tuple[np.ndarray, str]]) -> None:
        """Publish ``{output: (array, encoding)}`` of one frame with the input's header."""

    def points(self, cam: str, header, result) -> np.ndarray | None:
        """Labelled 3D points from this frame's depth / LiDAR (nothing when not configured);
        returns the frame's organised depth points (H, W, 3, optical frame) or None."""

    def costmap(self, published: list) -> dict[str, str]:
        """Fuse ``[(cam, header, result, t_rx, depth points or None)]`` into the costmap;
        ``{cam: problem}``."""

    def topk_changed(self, k: float) -> None:
        """The K in use changed (the latency controller moved it)."""


def render(result, rgb: np.ndarray, wanted, palette, overlay_alpha: float):
    """The arrays of one frame's wanted outputs: ``({output: (array, encoding)}, skipped)``.
    ``skipped`` lists the outputs not produced: not wanted, or (importance / confidence) not
    computed because nobody was subscribed when the batch started."""
    arrays, skipped, color = {}, [], None
    for out in IMAGE_OUTPUTS:
        if out not in wanted:
            skipped.append(out)
        elif out == "labels":
            arrays[out] = result.labels, ENCODING[out]
        elif out in ("color", "overlay"):
            if color is None:  # once per frame, whether one or both of them are wanted
                color = colorize(result.labels, palette)
            a = overlay_alpha
            arrays[out] = (color if out == "color" else cv2.addWeighted(rgb, 1.0 - a, color, a, 0.0)), ENCODING[out]
        elif (m := result.map_u8(out)) is None:  # uint8 round(255 m), as the device path computes it
            skipped.append(out)
        else:
            arrays[out] = m, ENCODING[out]
    return arrays, skipped


def aspect_warning(frame_hw, input_hw, resize_mode: str, tolerance: float = 0.15) -> str | None:
    """A one-line warning when ``stretch`` squeezes a camera's frames by more than ``tolerance`` to
    the network input's aspect ratio (a 4:3 camera on the 2:1 default: 0.67), else None."""
    if resize_mode != "stretch" or input_hw is None:
        return None
    (fh, fw), (ih, iw) = frame_hw, input_hw
    squeeze = (fw / fh) / (iw / ih)
    if abs(squeeze - 1.0) <= tolerance:
        return None
    return (f"{fw}x{fh} frames ({fw / fh:.2f}:1) are stretched to the network input {iw}x{ih} ({iw / ih:.2f}:1); "
            "for this camera set input_size to its aspect (e.g. [360, 480] for 4:3, docs/model_card.md "
            "'Input size') or resize_mode letterbox")


def check_k_control(params, segmenter) -> None:
    """Raise ValueError when the parameters ask for a K the backend cannot run: an ONNX graph has
    K fixed at export, so neither the latency controller nor another ``topk_ratio`` can move it
    (the second rule is the Segmenter's own, :meth:`~fornet_ros.inference.Segmenter.resolve_topk`)."""
    if params.latency_target_ms > 0 and segmenter.backend != "torch":
        raise ValueError(f"latency_target_ms needs the torch backend: this {segmenter.backend} model has K fixed at "
                         "export (set latency_target_ms: 0, or run the .pt checkpoint)")
    segmenter.resolve_topk(params.topk_ratio)


class FramePipeline:
    """One worker's path from taken frames to published arrays. ``params`` is the node's
    :class:`~fornet_ros.node.params.NodeParams` (replace it with :meth:`configure`); ``now_ns``
    the node's clock (ROS time: simulated under ``use_sim_time``, 0 before the first /clock)."""

    def __init__(self, segmenter, slots: FrameSlots, params, sink: Sink, log: Log, now_ns):
        self.segmenter, self.slots, self.sink, self.log, self.now_ns = segmenter, slots, sink, log, now_ns
        self.stopping = threading.Event()
        self._aspects_seen: set = set()  # (camera, frame size): the aspect warning once each
        self.k_ctrl: LatencyKController | None = None
        self._k_lock = threading.RLock()  # configure (executor thread) vs the controller (worker thread)
        self.params = params
        self.cost_curve()  # measure the focus paths now, at configure, not on the first frames
        self.configure(params)

    def cost_curve(self):
        """The Segmenter's measured cost curve (K -> network ms on the cheaper focus path) for a
        batch of this node's cameras, measured at the first call (:meth:`Segmenter.warmup`);
        None for a model with one path (an ONNX graph, no sparse head) or a segmenter without warm-up."""
        paths, batch = getattr(self.segmenter, "paths", None), len(self.params.cameras)
        if paths is None:
            return None
        table = paths.table(batch)
        if table is None or table.key[2] != batch:
            table = self.segmenter.warmup(batch)
        return table.cost if table is not None else None

    def configure(self, params, k_changed: bool = True) -> None:
        """Take new parameters; with ``k_changed``, K by hand (``topk_ratio``; negative = the
        model's own) or by the latency controller (``latency_target_ms`` > 0)."""
        if k_changed:
            check_k_control(params, self.segmenter)  # before anything is taken over
        self.params = params
        self.decode = DecodeOptions(params.max_input_pixels, params.generic_color_order, params.input_bit_depth)
        if not k_changed:
            return
        with self._k_lock:
            self.segmenter.topk_ratio = params.topk_ratio
            self.k_ctrl = (LatencyKController(params.latency_target_ms, params.k_min, params.k_max,
                                              k=self.segmenter.topk_ratio, cost=self.cost_curve())
                           if params.latency_target_ms > 0 else None)
            if self.k_ctrl is not None:
                self.segmenter.topk_ratio = self.k_ctrl.k
            self.sink.topk_changed(float(self.segmenter.topk_ratio))

    def run(self) -> None:
        """The worker loop: until the slots are closed; no single batch's exception ends it."""
        while taken := self.slots.take():
            try:
                self.process(taken)
            except Exception as e:  # noqa: BLE001 - the worker must survive any single batch
                if self.stopping.is_set():
                    return  # shutting down: publishers may already be gone
                for cam, *_ in taken:
                    self.slots.error(cam, f"{type(e).__name__}: {e}")
                self.log.error(f"processing failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)

    def admit(self, cam: str, msg, now_ns: int):
        """The frame's RGB array, or None when it is dropped (counted, with the reason)."""
        p, log = self.params, self.log
        drop, flag, age = stamp_verdict(stamp_ns(msg.header.stamp), now_ns, p.max_input_age_ms, p.max_stamp_ahead_ms)
        if flag:
            self.slots.flagged(cam, flag, "header stamp is 0 (driver sets no time?)")
            log.warning(f"{cam}: header stamp is 0: its age is unknown and TF looks up the latest pose",
                        throttle_duration_sec=5.0)
        if drop == "future":
            self.slots.dropped(cam, drop, f"stamp {-age:.0f} ms ahead of this node's clock")
            log.warning(f"{cam}: dropping a frame stamped {-age:.0f} ms in the future (max_stamp_ahead_ms "
                        f"{p.max_stamp_ahead_ms:g}): clocks not synchronised?", throttle_duration_sec=5.0)
        elif drop:
            self.slots.dropped(cam, drop, "zero stamp" if age is None else f"{age:.0f} ms old")
        if drop:
            return None
        try:
            rgb = to_rgb(msg, self.decode)
        except BadImageError as e:
            self.slots.dropped(cam, "bad", str(e))
            log.warning(f"{cam}: dropping bad image: {e}", throttle_duration_sec=2.0)
            return None
        except Exception as e:  # noqa: BLE001 - a decoder bug: count it, keep going
            self.slots.error(cam, f"decode: {type(e).__name__}: {e}")
            log.error(f"{cam}: decoding failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)
            return None
        if (cam, rgb.shape[:2]) not in self._aspects_seen:
            self._aspects_seen.add((cam, rgb.shape[:2]))
            seg = self.segmenter
            if warn := aspect_warning(rgb.shape[:2], getattr(seg, "input_size", None), getattr(seg, "resize_mode", "")):
                log.warning(f"{cam}: {warn}")
        return rgb

    def _guarded(self, cam: str, what: str, fn, *args) -> tuple[bool, object]:
        """Run one camera's step: (True, its result), or (False, None) when it raised - that
        camera's error, not the batch's."""
        try:
            return True, fn(*args)
        except Exception as e:  # noqa: BLE001
            if not self.stopping.is_set():
                self.slots.error(cam, f"{what}: {type(e).__name__}: {e}")
                self.log.error(f"{cam}: {what} failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)
            return False, None

    def _render_and_publish(self, cam: str, header, result, rgb, wanted) -> list[str]:
        arrays, skipped = render(result, rgb, wanted, self.segmenter.palette, self.params.overlay_alpha)
        self.sink.publish(cam, header, arrays)
        return skipped

    def process(self, taken) -> None:
        """One batch: ``[(cam, msg, receipt time)]`` from :meth:`FrameSlots.take`."""
        now_ns = self.now_ns()
        batch = [(cam, msg, t_rx, rgb) for cam, msg, t_rx in taken
                 if (rgb := self.admit(cam, msg, now_ns)) is not None]
        if not batch:
            return
        wanted = {cam: {o for o in IMAGE_OUTPUTS if self.sink.wanted(cam, o)} for cam, *_ in batch}
        compute = {o for o in ("importance", "confidence") if any(o in w for w in wanted.values())}
        if self.params.costmap_enabled and self.params.costmap_min_confidence > 0:
            compute.add("confidence")  # the costmap's confidence gating
        if any(self.sink.wanted(cam, "points") for cam, *_ in batch):
            compute.add("confidence")  # the labelled clouds' confidence field: computed, never a placeholder
        t0 = time.monotonic()
        try:
            results = self.segmenter([rgb for *_, rgb in batch], outputs=compute)
        except Exception as e:  # noqa: BLE001 - nothing published: errors, not processed
            for cam, *_ in batch:
                self.slots.error(cam, f"inference: {type(e).__name__}: {e}")
            self.log.error(f"inference failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)
            return
        batch_ms = (time.monotonic() - t0) * 1000
        infer_ms = batch_ms / len(batch)
        published = []
        try:
            for (cam, msg, t_rx, rgb), r in zip(batch, results):
                if self.stopping.is_set():
                    return
                ok, skipped = self._guarded(cam, "publish", self._render_and_publish, cam, msg.header, r, rgb,
                                            wanted[cam])
                if not ok:
                    continue
                self.slots.skipped(cam, skipped)
                depth = self._guarded(cam, "points", self.sink.points, cam, msg.header, r)[1]
                published.append((cam, msg.header, r, t_rx, depth))
            if published and not self.stopping.is_set():
                self._update_costmap(published)
        finally:  # the accounting of what was published happens whatever failed after it
            now_ns = self.now_ns()
            for cam, header, _, t_rx, _ in published:
                self.slots.done(cam, t_rx, infer_ms, *input_age(stamp_ns(header.stamp), now_ns))
            # each frame waited for the whole call: its latency moves with the call's time when K moves
            self._control_k([t_rx for _, _, _, t_rx, _ in published], batch_ms)

    def _update_costmap(self, published) -> None:
        try:
            problems = self.sink.costmap(published)
        except Exception as e:  # noqa: BLE001 - the costmap as a whole (publishing, fusion)
            if self.stopping.is_set():
                return
            problems = {cam: f"costmap: {type(e).__name__}: {e}" for cam, *_ in published}
            self.log.error(f"costmap update failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)
        for cam, problem in problems.items():
            self.slots.error(cam, problem)

    def _control_k(self, receipts, network_ms: float) -> None:
        with self._k_lock:  # a controller replaced meanwhile (parameter change) must not write its K back
            ctrl = self.k_ctrl
            if ctrl is None or not receipts:
                return
            k_before, now = ctrl.k, time.monotonic()
            for t_rx in receipts:
                ctrl.update((now - t_rx) * 1000, network_ms)
            if ctrl.k != k_before and self.k_ctrl is ctrl:
                self.segmenter.topk_ratio = ctrl.k
                self.sink.topk_changed(float(ctrl.k))
