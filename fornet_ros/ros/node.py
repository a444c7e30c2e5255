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
  /diagnostics: diagnostic_msgs/DiagnosticArray, one status per camera, every diagnostics_period_s
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ..classes import colorize
from ..diagnostics import camera_status
from ..frames import FrameSlots
from ..images import BadImageError, to_rgb
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
        self.camera_info = dict.fromkeys(self.params.cameras)
        self.pubs = {}
        self._make_io()
        self.costmap = self._make_costmap() if self.params.costmap_enabled else None
        self.add_on_set_parameters_callback(self._check_changes)
        self.add_post_set_parameters_callback(self._apply_changes)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
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
        if "topk_ratio" in changes:
            self.segmenter.topk_ratio = self.params.topk_ratio  # negative: the model's K; next frame on

    def _make_costmap(self):
        from ..geometry import GeometryError, Pose, load_layer_config
        from .costmap import SemanticCostmap
        poses = {}
        for cam in self.params.cameras:
            name = camera_pose_name(cam)
            value = self.declare_parameter(name, CAMERA_POSE.default, descriptor(CAMERA_POSE)).value
            try:
                poses[cam] = Pose.from_list(value)
            except GeometryError as e:
                raise ValueError(f"parameter '{name}': {e}") from e
        try:
            layers = load_layer_config(self.params.costmap_config, self.segmenter.classes)
        except GeometryError as e:
            raise ValueError(f"parameter 'costmap_config': {e}") from e
        return SemanticCostmap(self, self.params, layers, poses)

    # -- topics -------------------------------------------------------------------------------
    def _make_io(self):
        p = self.params
        qin, qout = qos(p.input_reliability, p.input_depth), qos(p.output_reliability, p.output_depth)
        for cam in p.cameras:
            image_type, topic = (CompressedImage, "image_raw/compressed") if p.compressed else (Image, "image_raw")
            self.create_subscription(image_type, f"{cam}/{topic}", lambda m, c=cam: self.slots.put(c, m), qin)
            self.create_subscription(CameraInfo, f"{cam}/camera_info",
                                     lambda m, c=cam: self.camera_info.__setitem__(c, m), qin)
            self.pubs[cam] = {out: self.create_publisher(Image, f"{cam}/semantic/{out}", qout)
                              for out in ("labels", "color", "importance", "confidence")}
            self.pubs[cam]["camera_info"] = self.create_publisher(CameraInfo, f"{cam}/semantic/camera_info", qout)
        msg = label_info(self.segmenter.classes, self.segmenter.palette)
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
            except Exception as e:  # noqa: BLE001 - the worker must survive any single frame
                self.get_logger().error(f"inference failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)

    def _stamp_age_ms(self, header) -> float | None:
        ns = stamp_ns(header.stamp)
        return None if ns == 0 else (self.get_clock().now().nanoseconds - ns) / 1e6

    def _process(self, taken):
        p = self.params
        batch = []
        for cam, msg, t_rx in taken:
            age = self._stamp_age_ms(msg.header)
            if p.max_input_age_ms > 0 and age is not None and age > p.max_input_age_ms:
                self.slots.dropped(cam, "stale")
                continue
            try:
                batch.append((cam, msg, t_rx, to_rgb(msg)))
            except BadImageError as e:
                self.slots.dropped(cam, "bad")
                self.get_logger().warning(f"{cam}: dropping bad image: {e}", throttle_duration_sec=2.0)
        if not batch:
            return
        t0 = time.monotonic()
        results = self.segmenter([rgb for *_, rgb in batch])
        infer_ms = (time.monotonic() - t0) * 1000 / len(batch)
        for (cam, msg, _, _), r in zip(batch, results):
            self._publish(cam, msg.header, r)
        if self.costmap is not None:
            self.costmap.update([(cam, msg.header, r.labels, self.camera_info[cam])
                                 for (cam, msg, _, _), r in zip(batch, results)])
        for cam, msg, t_rx, _ in batch:
            self.slots.done(cam, t_rx, infer_ms, self._stamp_age_ms(msg.header))

    def _publish(self, cam: str, header, r):
        p, pubs = self.params, self.pubs[cam]
        pubs["labels"].publish(fill_image(Image(), r.labels, header, "mono8"))
        if p.publish_color:
            pubs["color"].publish(fill_image(Image(), colorize(r.labels, self.segmenter.palette), header, "rgb8"))
        if p.publish_importance:
            pubs["importance"].publish(fill_image(Image(), np.rint(r.importance * 255).astype(np.uint8), header))
        if p.publish_confidence:
            pubs["confidence"].publish(fill_image(Image(), np.rint(r.confidence * 255).astype(np.uint8), header))
        info = self.camera_info[cam]
        if p.publish_camera_info and info is not None:
            info.header = header
            pubs["camera_info"].publish(info)

    def _publish_diagnostics(self):
        s = self.segmenter
        model = {"device": str(s.device), "backend": s.backend, "provider": s.provider, "model": s.cfg.variant,
                 "topk_ratio": f"{s.topk_ratio:g}"}
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        for cam, stats in self.slots.stats().items():
            level, message, values = camera_status(stats, self.params)
            arr.status.append(DiagnosticStatus(level=bytes([level]), name=f"fornet_ros: {cam}", message=message,
                                               hardware_id=str(s.device), values=[
                                                   KeyValue(key=k, value=v) for k, v in {**values, **model}.items()]))
        self.diag_pub.publish(arr)

    def stop(self):
        self.slots.close()
        self.worker.join(timeout=5.0)


def main(args=None):
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = SegmentationNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (RuntimeError, ValueError, ParameterException) as e:
        # start-up errors (bad parameter, missing checkpoint): one clear line, no traceback
        print(f"[fornet_segmentation] error: {e}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
