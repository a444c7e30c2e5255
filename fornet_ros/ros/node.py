"""segmentation_node: camera images in; labels, colour, importance, confidence, camera_info out.

A thin adapter: parameters come from the table in :mod:`fornet_ros.node_config`, frames wait in
:class:`fornet_ros.frames.FrameSlots` (the newest per camera; never blocks, never queues), one
worker thread decodes them (:mod:`fornet_ros.images`), runs one batched
:class:`fornet_ros.inference.Segmenter` call and publishes with the input header; /diagnostics
follows :func:`fornet_ros.diagnostics.camera_status` on a wall-clock timer (it keeps reporting
with ``use_sim_time`` and no /clock).

Topics (relative to the node namespace, per camera ``<cam>``):
  in : <cam>/image_raw (sensor_msgs/Image) or <cam>/image_raw/compressed (parameter ``compressed``),
       <cam>/camera_info
  out: <cam>/semantic/labels      mono8, train IDs (255 = ignore)
       <cam>/semantic/color       rgb8, palette colours
       <cam>/semantic/importance  mono8, selector importance x 255 (0 = unimportant, 255 = most)
       <cam>/semantic/confidence  mono8, max softmax probability x 255
       <cam>/semantic/camera_info the input CameraInfo with the output header (same resolution)
       semantic_costmap/*, semantic_points: see :mod:`fornet_ros.ros.costmap`
  semantic/label_info (latched): vision_msgs/LabelInfo when installed, else std_msgs/String with
       JSON {"classes": [...], "palette": [[r,g,b], ...], "ignore_id": 255}
  semantic/topk_ratio (latched): std_msgs/Float32, the K in use (moves when latency_target_ms > 0)
  /diagnostics: diagnostic_msgs/DiagnosticArray, one status per camera, every diagnostics_period_s

Failures are per frame and per camera: a bad image or stamp is counted and dropped, an exception
while segmenting, publishing or projecting one camera is counted (/diagnostics ERROR) and never
stops the worker, the other cameras or the counters. SIGINT/SIGTERM stop the worker before the
context goes; a second signal during that clean-up is ignored.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float32

from ..classes import colorize
from ..diagnostics import camera_status
from ..frames import FrameSlots, stamp_verdict
from ..images import BadImageError, DecodeOptions, to_rgb
from ..k_controller import LatencyKController
from ..node_config import CAMERA_POSE, SPECS, NodeParams, ParamSpec, build_segmenter, camera_pose_name
from .conversions import fill_image, label_info, stamp_ns


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ROS descriptor of a table row: static parameters are read-only; floats also take integers."""
    d = ParameterDescriptor(description=spec.description, additional_constraints=spec.constraint,
                            read_only=not spec.runtime, dynamic_typing=spec.type.startswith("float"))
    if spec.range and spec.type == "float":
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.range[0]), to_value=float(spec.range[1]))]
    if spec.range and spec.type == "int":
        d.integer_range = [IntegerRange(from_value=spec.range[0], to_value=spec.range[1], step=1)]
    return d


def qos(reliability: str, depth: int, latched: bool = False) -> QoSProfile:
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable"
                      else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class SegmentationNode(Node):
    def __init__(self, **kwargs):
        super().__init__("fornet_segmentation", **kwargs)
        self.params = NodeParams.from_values({s.name: self.declare_parameter(s.name, s.default, descriptor(s)).value
                                              for s in SPECS.values()})
        self.segmenter, problem = build_segmenter(self.params)
        if problem:
            self.get_logger().warning(problem)
        self.slots = FrameSlots(self.params.cameras)
        self.decode = DecodeOptions(self.params.max_input_pixels, self.params.generic_color_order,
                                    self.params.input_bit_depth)
        self._stopping = threading.Event()
        self.camera_info = dict.fromkeys(self.params.cameras)
        self.pubs = {}
        self._make_io()
        self.poses = self._camera_poses()
        self.costmap = self._make_costmap() if self.params.costmap_enabled else None
        self.points3d = None
        if self.params.depth_enabled or self.params.lidar_topic:
            from .points3d import LabelledPoints
            p = self.params
            self.points3d = LabelledPoints(self, p, self.poses, qos(p.input_reliability, p.input_depth),
                                           qos(p.output_reliability, p.output_depth))
        self.add_on_set_parameters_callback(self._check_changes)
        self.add_post_set_parameters_callback(self._apply_changes)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.k_pub = self.create_publisher(Float32, "semantic/topk_ratio", qos("reliable", 1, latched=True))
        self._configure_k()
        self.create_timer(self.params.diagnostics_period_s, self._publish_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.worker = threading.Thread(target=self._work, name="fornet_worker", daemon=True)
        self.worker.start()
        s = self.segmenter
        self.get_logger().info(
            f"FoR-Net {s.cfg.variant} on {s.backend} {s.provider} ({str(s.dtype).split('.')[-1]}), input {s.input_size}, "
            f"K={s.topk_ratio}, cameras {list(self.params.cameras)}")

    # -- parameters: validated in the on-set callback, applied in the post-set callback ----------
    def _check_changes(self, params) -> SetParametersResult:
        try:
            self.params.changed({p.name: p.value for p in params if p.name in SPECS})
        except ValueError as e:
            return SetParametersResult(successful=False, reason=str(e))
        return SetParametersResult(successful=True)

    def _apply_changes(self, params) -> None:
        changes = {p.name: p.value for p in params if p.name in SPECS}
        self.params = self.params.changed(changes)
        if changes.keys() & {"topk_ratio", "latency_target_ms", "k_min", "k_max"}:
            self._configure_k()

    def _configure_k(self) -> None:
        """K by hand (topk_ratio; negative = the model's) or by the latency controller."""
        p = self.params
        self.segmenter.topk_ratio = p.topk_ratio
        self.k_ctrl = (LatencyKController(p.latency_target_ms, p.k_min, p.k_max, k=self.segmenter.topk_ratio)
                       if p.latency_target_ms > 0 else None)
        if self.k_ctrl is not None:
            self.segmenter.topk_ratio = self.k_ctrl.k
        self.k_pub.publish(Float32(data=float(self.segmenter.topk_ratio)))

    def _camera_poses(self) -> dict:
        from ..geometry import GeometryError, Pose
        poses = {}
        for cam in self.params.cameras:
            name = camera_pose_name(cam)
            value = self.declare_parameter(name, CAMERA_POSE.default, descriptor(CAMERA_POSE)).value
            try:
                poses[cam] = Pose.from_list(value)
            except GeometryError as e:
                raise ValueError(f"parameter '{name}': {e}") from e
        return poses

    def _make_costmap(self):
        from ..geometry import GeometryError, load_layer_config
        from .costmap import SemanticCostmap
        try:
            layers = load_layer_config(self.params.costmap_config, self.segmenter.classes)
        except GeometryError as e:
            raise ValueError(f"parameter 'costmap_config': {e}") from e
        return SemanticCostmap(self, self.params, layers, self.poses)

    # -- topics -------------------------------------------------------------------------------
    def _make_io(self):
        p = self.params
        qin, qout = qos(p.input_reliability, p.input_depth), qos(p.output_reliability, p.output_depth)
        for cam in p.cameras:
            image_type, topic = (CompressedImage, "image_raw/compressed") if p.compressed else (Image, "image_raw")
            self.create_subscription(image_type, f"{cam}/{topic}",
                                     lambda m, info, c=cam: self.slots.put(c, m, *publication_seq(info)), qin)
            self.create_subscription(CameraInfo, f"{cam}/camera_info",
                                     lambda m, c=cam: self.camera_info.__setitem__(c, m), qin)
            self.pubs[cam] = {out: self.create_publisher(Image, f"{cam}/semantic/{out}", qout)
                              for out in ("labels", "color", "importance", "confidence", "overlay")}
            self.pubs[cam]["camera_info"] = self.create_publisher(CameraInfo, f"{cam}/semantic/camera_info", qout)
        msg = label_info(self.segmenter.classes, self.segmenter.palette)
        if not hasattr(msg, "class_map"):
            self.get_logger().warning("vision_msgs is not installed: semantic/label_info is a JSON std_msgs/String; "
                                      "Nav2's semantic segmentation layer needs vision_msgs/LabelInfo (docs/nav2.md)")
        self.label_info_pub = self.create_publisher(type(msg), "semantic/label_info", qos("reliable", 1, latched=True))
        self.label_info_pub.publish(msg)

    # -- worker -------------------------------------------------------------------------------
    def _work(self):
        while True:
            taken = self.slots.take()
            if not taken:
                return  # closed
            try:
                self._process(taken)
            except Exception as e:  # noqa: BLE001 - the worker must survive any single batch
                if self._stopping.is_set():
                    return  # shutting down: publishers may already be gone
                for cam, *_ in taken:
                    self.slots.error(cam, f"{type(e).__name__}: {e}")
                self.get_logger().error(f"processing failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)

    def _stamp_age_ms(self, header) -> float | None:
        ns = stamp_ns(header.stamp)
        return None if ns == 0 else (self.get_clock().now().nanoseconds - ns) / 1e6

    def _admit(self, cam: str, msg, now_ns: int):
        """The frame's RGB array, or None when it is dropped (counted, with the reason)."""
        p, log = self.params, self.get_logger()
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
            return to_rgb(msg, self.decode)
        except BadImageError as e:
            self.slots.dropped(cam, "bad", str(e))
            log.warning(f"{cam}: dropping bad image: {e}", throttle_duration_sec=2.0)
        except Exception as e:  # noqa: BLE001 - a decoder bug: count it, keep going
            self.slots.error(cam, f"decode: {type(e).__name__}: {e}")
            log.error(f"{cam}: decoding failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)
        return None

    def _process(self, taken):
        now_ns = self.get_clock().now().nanoseconds
        batch = [(cam, msg, t_rx, rgb) for cam, msg, t_rx in taken
                 if (rgb := self._admit(cam, msg, now_ns)) is not None]
        if not batch:
            return
        cams = {cam for cam, *_ in batch}
        outputs = {o for o in ("importance", "confidence") if any(self._wanted(c, o) for c in cams)}
        t0 = time.monotonic()
        try:
            results = self.segmenter([rgb for *_, rgb in batch], outputs=outputs)
        except Exception as e:  # noqa: BLE001 - nothing published: errors, not processed
            for cam, *_ in batch:
                self.slots.error(cam, f"inference: {type(e).__name__}: {e}")
            self.get_logger().error(f"inference failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)
            return
        infer_ms = (time.monotonic() - t0) * 1000 / len(batch)
        published = []
        try:
            for (cam, msg, t_rx, rgb), r in zip(batch, results):
                if self._stopping.is_set():
                    return
                try:
                    self._publish(cam, msg.header, r, rgb)
                except Exception as e:  # noqa: BLE001
                    if self._stopping.is_set():
                        return
                    self.slots.error(cam, f"publish: {type(e).__name__}: {e}")
                    self.get_logger().error(f"{cam}: publishing failed: {type(e).__name__}: {e}",
                                            throttle_duration_sec=5.0)
                    continue
                published.append((cam, msg, t_rx, r))
                if self.points3d is not None:
                    try:
                        self.points3d.process(cam, msg.header, r, self.camera_info[cam])
                    except Exception as e:  # noqa: BLE001 - a bad depth/LiDAR message costs only its points
                        self.slots.error(cam, f"points: {type(e).__name__}: {e}")
                        self.get_logger().error(f"{cam}: labelled points failed: {type(e).__name__}: {e}",
                                                throttle_duration_sec=5.0)
            if self.costmap is not None and published and not self._stopping.is_set():
                self._update_costmap(published)
        finally:  # the accounting of what was published happens whatever failed after it
            for cam, msg, t_rx, _ in published:
                self.slots.done(cam, t_rx, infer_ms, self._stamp_age_ms(msg.header))
            ctrl = self.k_ctrl
            if ctrl is not None and published:
                k_before, now = ctrl.k, time.monotonic()
                for *_, t_rx, _ in published:
                    ctrl.update((now - t_rx) * 1000)
                if ctrl.k != k_before:
                    self.segmenter.topk_ratio = ctrl.k
                    self.k_pub.publish(Float32(data=float(ctrl.k)))

    def _update_costmap(self, published):
        try:
            problems = self.costmap.update([(cam, msg.header, r.labels, self.camera_info[cam], t_rx)
                                            for cam, msg, t_rx, r in published], time.monotonic())
        except Exception as e:  # noqa: BLE001 - the costmap as a whole (publishing, fusion)
            if self._stopping.is_set():
                return
            problems = {cam: f"costmap: {type(e).__name__}: {e}" for cam, *_ in published}
            self.get_logger().error(f"costmap update failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)
        for cam, problem in problems.items():
            self.slots.error(cam, problem)

    def _wanted(self, cam: str, out: str) -> bool:
        """An optional output is computed and published only when enabled AND subscribed (lazy)."""
        on = out == "labels" or getattr(self.params, f"publish_{out}")
        return on and self.pubs[cam][out].get_subscription_count() > 0

    def _publish(self, cam: str, header, r, rgb):
        p, pubs = self.params, self.pubs[cam]
        skipped, color = [], None
        for out in ("labels", "color", "importance", "confidence", "overlay"):
            if not self._wanted(cam, out):
                skipped.append(out)
                continue
            if out == "labels":
                msg = fill_image(Image(), r.labels, header, "mono8")
            elif out in ("color", "overlay"):
                if color is None:  # once per frame, whether one or both of them are subscribed
                    color = colorize(r.labels, self.segmenter.palette)
                a = p.overlay_alpha
                img = color if out == "color" else cv2.addWeighted(rgb, 1.0 - a, color, a, 0.0)
                msg = fill_image(Image(), img, header, "rgb8")
            else:
                m = getattr(r, out)
                if m is None:  # subscribed since the batch started: next frame
                    skipped.append(out)
                    continue
                msg = fill_image(Image(), np.rint(m * 255).astype(np.uint8), header)
            pubs[out].publish(msg)
        self.slots.skipped(cam, skipped)
        info = self.camera_info[cam]
        if p.publish_camera_info and info is not None:
            info.header = header
            pubs["camera_info"].publish(info)

    def _publish_diagnostics(self):
        s = self.segmenter
        model = {"device": str(s.device), "backend": s.backend, "provider": s.provider, "model": s.cfg.variant,
                 "topk_ratio": f"{s.topk_ratio:g}"}
        ctrl = self.k_ctrl
        model["k_controller"] = ("off" if ctrl is None else f"target {ctrl.target_ms:g} ms, p95 "
                                 f"{ctrl.p95_ms or 0:.1f} ms" + (", SATURATED at k_min" if ctrl.saturated else ""))
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        for cam, stats in self.slots.stats().items():
            level, message, values = camera_status(stats, self.params)
            if self.points3d is not None:
                values.update({k: str(v) for k, v in self.points3d.counts[cam].items()})
            arr.status.append(DiagnosticStatus(level=bytes([level]), name=f"fornet_ros: {cam}", message=message,
                                               hardware_id=str(s.device), values=[
                                                   KeyValue(key=k, value=v) for k, v in {**values, **model}.items()]))
        self.diag_pub.publish(arr)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the worker (it finishes or abandons its batch without publishing more); True when
        it ended within ``timeout`` s."""
        self._stopping.set()
        self.slots.close()
        self.worker.join(timeout=timeout)
        return not self.worker.is_alive()


def publication_seq(info) -> tuple:
    """(sequence number, publisher id) from an rclpy MessageInfo, or () where the middleware
    gives none (sensor_msgs/Image itself has no sequence number in ROS 2)."""
    seq = info.get("publication_sequence_number") if isinstance(info, dict) else None
    if not seq or seq >= 2**63:  # 0 / None / RMW_MESSAGE_INFO_SEQUENCE_NUMBER_UNSUPPORTED
        return ()
    gid = info.get("publisher_gid")
    return seq, None if gid is None else repr(gid)  # per publisher: two drivers on one topic are not gaps


def main(args=None):
    """Run the node until SIGINT or SIGTERM; exit 0 within ~2 s even under load.

    rclpy's own signal handler would shut the context down while the worker still publishes (and
    re-raise KeyboardInterrupt on a second Ctrl-C); ours only asks the spin loop to end. The worker
    then stops before the node and context go; further signals are ignored."""
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
        # ignore any further SIGINT/SIGTERM (ros2 launch and the terminal both send one on Ctrl-C):
        # SIG_IGN, not a Python handler, which interpreter finalisation would reset to the default
        # and a late second signal would then kill the process (exit -2)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    code = 0
    try:
        node = SegmentationNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    except (RuntimeError, ValueError, ParameterException) as e:
        # start-up errors (bad parameter, missing checkpoint): one clear line, no traceback
        print(f"[fornet_segmentation] error: {e}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if node is not None and not node.stop(timeout=1.5):
            # the worker is inside one long call (inference on a slow CPU): do not wait for it,
            # and do not pull the context from under it either
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
