"""segmentation_node: camera images in; labels, colour, importance, confidence, camera_info out.

A thin adapter: subscriptions, publishers, the worker thread and the parameter bridge. Parameters
come from the table in :mod:`fornet_ros.node.params`; frames wait in
:class:`fornet_ros.node.frames.FrameSlots` (the newest per camera; never blocks, never queues); the
worker runs :class:`fornet_ros.node.pipeline.FramePipeline` (stamp check, decode, one batched
segmentation, output arrays, accounting, K controller: all ROS-free) and this node is its sink,
turning arrays into messages with the input header; /diagnostics follows
:func:`fornet_ros.node.diagnostics.camera_status` on a wall-clock timer (it keeps reporting with
``use_sim_time`` and no /clock).

A managed (lifecycle) node, :mod:`fornet_ros.ros.lifecycle`: nothing below exists until it is
active; ``autostart`` (default true) configures and activates it at start-up, ``autostart: false``
leaves that to a lifecycle manager (docs/nav2.md).

Topics (relative to the node namespace, per camera ``<cam>``):
  in : <cam>/image_raw (sensor_msgs/Image) or <cam>/image_raw/compressed (parameter ``compressed``),
       <cam>/camera_info
  out: <cam>/semantic/labels      mono8, class IDs of the model (255 = ignore)
       <cam>/semantic/color       rgb8, palette colours
       <cam>/semantic/importance  mono8, selector importance x 255 (0 = unimportant, 255 = most; FoR-Net only)
       <cam>/semantic/confidence  mono8, max softmax probability x 255 (not for a labels-output model)
       <cam>/semantic/camera_info the input CameraInfo with the output header (same resolution)
       semantic_costmap/*, semantic_points: see :mod:`fornet_ros.ros.costmap`
  semantic/label_info (latched): vision_msgs/LabelInfo when installed, else std_msgs/String with
       JSON {"classes": [...], "palette": [[r,g,b], ...], "ignore_id": 255}
  semantic/topk_ratio (latched): std_msgs/Float32, the K in use (moves when latency_target_ms > 0)
  /diagnostics: diagnostic_msgs/DiagnosticArray, one status per camera, every diagnostics_period_s

Failures are per frame and per camera (see :mod:`fornet_ros.node.pipeline`). SIGINT/SIGTERM stop the
worker before the context goes; a second signal during that clean-up is ignored. The process starts
in :mod:`fornet_ros.ros.segmentation_node`, which installs that handling before this module's imports.
"""

from __future__ import annotations

import copy
import sys
import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Float32

from ..mapping import GeometryError, Pose, load_layer_config
from ..mapping.self_mask import SelfMask, SelfMaskError
from ..node.diagnostics import camera_status, model_values
from ..node.frames import FrameSlots
from ..node.params import (CAMERA_POSE, SELF_MASK_IMAGE, SELF_MASK_ROWS, SPECS, NodeParams, build_segmenter,
                           camera_param_name, camera_pose_name, undeclared_parameters)
from ..node.pipeline import IMAGE_OUTPUTS, FramePipeline, check_k_control
from .conversions import descriptor, fill_image, label_info, publication_seq, qos
from .costmap import CostmapFrame, SemanticCostmap
from .lifecycle import ManagedNode

K_PARAMS = {"topk_ratio", "latency_target_ms", "k_min", "k_max"}
NODE_NAME = "fornet_segmentation"


class SegmentationNode(ManagedNode):
    """A managed node (:mod:`fornet_ros.ros.lifecycle`): *configure* loads and warms up the model,
    *activate* creates the topics and starts the worker, *deactivate* stops it (the model stays),
    *cleanup* frees the model. With ``autostart`` (default) construction runs configure + activate
    and raises on failure, so the node runs as a plain node would."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        values = {s.name: self.declare_parameter(s.name, s.default, descriptor(s)).value for s in SPECS.values()}
        self.segmenter = self.layers = self.pipeline = self.worker = self.slots = None
        self.grid = self.points3d = None
        self.self_masks, self._mask_values = {}, {}
        self._undeclared_reported = False
        try:  # static parameters cannot change later: a bad one fails every configure, with its reason
            self.params, self._param_error = NodeParams.from_values(values), None
            self.poses = {cam: self._pose_parameter(cam) for cam in self.params.cameras}
            self._mask_values = {cam: self._self_mask_parameters(cam) for cam in self.params.cameras}
        except ValueError as e:
            self.params, self._param_error = None, e
        self.add_on_set_parameters_callback(self._check_changes)
        self.add_post_set_parameters_callback(self._apply_changes)
        if values["autostart"]:
            self.autostart()
        else:
            self.get_logger().info("autostart is false: waiting for a lifecycle manager (configure, activate)")

    # -- lifecycle hooks (fornet_ros.ros.lifecycle.ManagedNode) ---------------------------------
    def load(self) -> None:
        """configure: the parameters, the model (loaded and warmed up), the costmap layers."""
        self._report_undeclared()
        if self._param_error is not None:
            raise self._param_error
        p = self.params = NodeParams.from_values({name: self.get_parameter(name).value for name in SPECS})
        self.self_masks = self._self_masks()
        t0 = time.monotonic()
        segmenter, problem = build_segmenter(p)
        if problem:
            self.get_logger().warning(problem)
        if getattr(segmenter, "choice", None):  # backend fastest: which one, and the times it was picked by
            self.get_logger().info(segmenter.choice)
        check_k_control(p, segmenter)
        segmenter([np.zeros((*segmenter.input_size, 3), np.uint8)])  # warm-up: first-call allocations, kernels
        layers = None
        if p.costmap_enabled:
            try:
                layers = load_layer_config(p.costmap_config, segmenter.classes)
            except GeometryError as e:
                hint = "" if p.costmap_config else (
                    " (the built-in layers name Cityscapes classes: give this model's classes a costmap_config, "
                    "or set costmap_enabled: false)")
                raise ValueError(f"parameter 'costmap_config': {e}{hint}") from e
            unnamed = layers.unnamed(segmenter.classes)
            if unnamed:  # reported once, here
                self.get_logger().info(f"costmap: classes in no ground/obstacle list or layer (never in the grids): "
                                       f"{', '.join(unnamed)}")
        self.segmenter, self.layers = segmenter, layers
        s = segmenter
        self.get_logger().info(
            f"{'FoR-Net ' if s.cfg.focus else 'model '}{s.cfg.variant} on {s.backend} {s.provider} "
            f"({str(s.dtype).split('.')[-1]}), input {s.input_size}, K={s.topk_ratio}, {len(s.classes)} classes, "
            f"pre/post-processing {s.processing}, CUDA graphs {'on' if s.graphs is not None else 'off'}; "
            f"loaded and warmed up in {time.monotonic() - t0:.1f} s")

    def start(self) -> None:
        """activate: topics, costmap, 3D points, the worker."""
        p = self.params
        self.slots = FrameSlots(p.cameras)
        self.camera_info = dict.fromkeys(p.cameras)
        self._make_io()
        if self.layers is not None:
            self.grid = SemanticCostmap(self, p, self.layers, self.poses)
        if p.depth_enabled or p.lidar_topic:
            from .points3d import LabelledPoints
            self.points3d = LabelledPoints(self, p, self.poses, qos(p.input_reliability, p.input_depth),
                                           qos(p.output_reliability, p.output_depth))
        self.pipeline = FramePipeline(self.segmenter, self.slots, p, self, self.get_logger(),
                                      lambda: self.get_clock().now().nanoseconds)
        self.create_timer(p.diagnostics_period_s, self._publish_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.worker = threading.Thread(target=self.pipeline.run, name="fornet_worker", daemon=True)
        self.worker.start()
        self.get_logger().info(f"active: cameras {list(p.cameras)}")

    def halt(self) -> None:
        """deactivate: the worker stops (a batch in flight is not published); the model stays."""
        if not self.stop(timeout=10.0):
            self.get_logger().warning("the worker is still inside one inference call; it publishes nothing more")
        self.pipeline = self.worker = self.grid = self.points3d = None

    def unload(self) -> None:
        """cleanup: drop the model (ManagedNode then returns the memory to the OS)."""
        self.segmenter = self.layers = None
        self.self_masks = {}

    # -- parameters: validated in the on-set callback, applied in the post-set callback ----------
    def _check_changes(self, params) -> SetParametersResult:
        if self.params is None:  # invalid static parameters: configure reports them
            return SetParametersResult(successful=True)
        try:
            changed = self.params.changed({p.name: p.value for p in params if p.name in SPECS})
            if self.segmenter is not None:  # configured: K rules of the loaded model
                check_k_control(changed, self.segmenter)
        except ValueError as e:
            return SetParametersResult(successful=False, reason=str(e))
        return SetParametersResult(successful=True)

    def _apply_changes(self, params) -> None:
        changes = {p.name: p.value for p in params if p.name in SPECS}
        if self.params is None:
            return
        old, self.params = self.params, self.params.changed(changes)
        # a K parameter set to the value it has (a params file applied again, a repeated service call)
        # leaves K and the controller's state as they are
        k_changed = any(getattr(old, k) != getattr(self.params, k) for k in K_PARAMS)
        if self.pipeline is not None:  # active; otherwise activate hands self.params to a new pipeline
            self.pipeline.configure(self.params, k_changed=k_changed)

    def _report_undeclared(self) -> None:
        """Warn once, at the first configure, about parameters given to the node (params files, -p)
        that it does not declare: a misspelled name would otherwise be ignored without a word."""
        if self._undeclared_reported:
            return
        self._undeclared_reported = True
        # rclpy has no public accessor for the overrides a node was given: Node keeps them (from the
        # context's --params-file/-p and the constructor's parameter_overrides) in _parameter_overrides
        message = undeclared_parameters(self._parameter_overrides, self.get_parameters_by_prefix(""))
        if message:
            self.get_logger().warning(message)

    def _self_mask_parameters(self, cam: str) -> tuple[int, str]:
        """(rows, image) of ``cam``'s self mask, declared at construction (static)."""
        rows, image = (self.declare_parameter(camera_param_name(spec, cam), spec.default, descriptor(spec)).value
                       for spec in (SELF_MASK_ROWS, SELF_MASK_IMAGE))
        return rows, image

    def _self_masks(self) -> dict[str, SelfMask]:
        """The cameras' self masks (the mask image read now, at configure); logged when set."""
        masks = {}
        for cam, (rows, image) in self._mask_values.items():
            try:
                masks[cam] = SelfMask(rows, image, name=f"parameters '{camera_param_name(SELF_MASK_ROWS, cam)}', "
                                                        f"'{camera_param_name(SELF_MASK_IMAGE, cam)}'")
            except SelfMaskError as e:
                raise ValueError(str(e)) from e
            if not masks[cam].empty:
                self.get_logger().info(f"{cam}: self mask: {masks[cam].describe()} never reach the costmap or the "
                                       "points")
        return masks

    def _masked(self, cam: str, r):
        """The segmentation ``r`` with ``cam``'s self-mask pixels set to ignore (for the map and the points)."""
        mask = self.self_masks.get(cam)
        if mask is None or mask.empty:
            return r
        out = copy.copy(r)
        out.labels = mask.apply(r.labels)
        return out

    def _pose_parameter(self, cam: str) -> Pose:
        name = camera_pose_name(cam)
        try:  # declared at construction (static): configure reads the same value every time
            return Pose.from_list(self.declare_parameter(name, CAMERA_POSE.default, descriptor(CAMERA_POSE)).value)
        except GeometryError as e:
            raise ValueError(f"parameter '{name}': {e}") from e

    # -- topics -------------------------------------------------------------------------------
    def _make_io(self):
        p = self.params
        qin, qout = qos(p.input_reliability, p.input_depth), qos(p.output_reliability, p.output_depth)
        image_type, topic = (CompressedImage, "image_raw/compressed") if p.compressed else (Image, "image_raw")
        self.pubs = {}
        for cam in p.cameras:
            self.create_subscription(image_type, f"{cam}/{topic}",
                                     lambda m, info, c=cam: self.slots.put(c, m, *publication_seq(info)), qin)
            self.create_subscription(CameraInfo, f"{cam}/camera_info",
                                     lambda m, c=cam: self.camera_info.__setitem__(c, m), qin)
            self.pubs[cam] = {out: self.create_publisher(Image, f"{cam}/semantic/{out}", qout) for out in IMAGE_OUTPUTS}
            self.pubs[cam]["camera_info"] = self.create_publisher(CameraInfo, f"{cam}/semantic/camera_info", qout)
        latched = qos("reliable", 1, latched=True)
        msg = label_info(self.segmenter.classes, self.segmenter.palette)
        if not hasattr(msg, "class_map"):
            self.get_logger().warning("vision_msgs is not installed: semantic/label_info is a JSON std_msgs/String; "
                                      "Nav2's semantic segmentation layer needs vision_msgs/LabelInfo (docs/nav2.md)")
        self.label_info_pub = self.create_publisher(type(msg), "semantic/label_info", latched)
        self.label_info_pub.publish(msg)
        self.k_pub = self.create_publisher(Float32, "semantic/topk_ratio", latched)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)

    # -- the pipeline's sink (called from the worker thread) -----------------------------------
    def wanted(self, cam: str, out: str) -> bool:
        """An optional output is computed and published only when enabled AND subscribed (lazy)."""
        if out == "points":
            return self.points3d is not None and self.points3d.subscribed(cam)
        on = out == "labels" or getattr(self.params, f"publish_{out}")
        return on and self.pubs[cam][out].get_subscription_count() > 0

    def publish(self, cam: str, header, arrays) -> None:
        pubs = self.pubs[cam]
        for out, (arr, encoding) in arrays.items():
            pubs[out].publish(fill_image(Image(), arr, header, encoding))
        info = self.camera_info[cam]
        if self.params.publish_camera_info and info is not None:
            info.header = header
            pubs["camera_info"].publish(info)

    def points(self, cam: str, header, result):
        if self.points3d is None:
            return None
        return self.points3d.process(cam, header, self._masked(cam, result), self.camera_info[cam])

    def costmap(self, published) -> dict[str, str]:
        if self.grid is None:
            return {}
        return self.grid.update([CostmapFrame(cam, header, self._masked(cam, r).labels, self.camera_info[cam], t_rx,
                                              r.confidence, depth)
                                 for cam, header, r, t_rx, depth in published], time.monotonic())

    def topk_changed(self, k: float) -> None:
        self.k_pub.publish(Float32(data=k))

    # -- diagnostics and shutdown ----------------------------------------------------------------
    def _publish_diagnostics(self):
        arr = DiagnosticArray()
        now = self.get_clock().now()  # 0 under use_sim_time before /clock: stamp with the wall clock then
        arr.header.stamp = (now if now.nanoseconds else Clock(clock_type=ClockType.SYSTEM_TIME).now()).to_msg()
        model = model_values(self.segmenter, self.pipeline.k_ctrl)
        for cam, stats in self.slots.stats().items():
            level, message, values = camera_status(stats, self.params)
            if self.points3d is not None:
                values.update({k: str(v) for k, v in self.points3d.counts_of(cam).items()})
            arr.status.append(DiagnosticStatus(level=bytes([level]), name=f"fornet_ros: {cam}", message=message,
                                               hardware_id=model["device"], values=[
                                                   KeyValue(key=k, value=v) for k, v in {**values, **model}.items()]))
        self.diag_pub.publish(arr)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the worker (it finishes or abandons its batch without publishing more); True when
        it ended within ``timeout`` s (or none runs)."""
        if self.worker is None:
            return True
        self.pipeline.stopping.set()
        self.slots.close()
        self.worker.join(timeout=timeout)
        return not self.worker.is_alive()


def main(args=None) -> int:
    """The console entry, :func:`fornet_ros.ros.segmentation_node.main` (signals first)."""
    from .segmentation_node import main as process_main
    return process_main(args)


if __name__ == "__main__":
    sys.exit(main())
