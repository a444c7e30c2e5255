"""segmentation_node: camera images in; labels, colour, importance, confidence, camera_info out.

Threading: subscription callbacks only keep the newest message per camera (never block, never
queue); one worker thread takes the newest frame of every camera that has one, runs one batched
inference through :class:`fornet_ros.inference.Segmenter`, and publishes with the input header.
Frames overwritten before the worker got to them, or older than ``max_input_age_ms``, are
dropped and counted in the diagnostics.

Topics (relative to the node namespace, per camera ``<cam>``):
  in : <cam>/image_raw (sensor_msgs/Image) or <cam>/image_raw/compressed (parameter ``compressed``),
       <cam>/camera_info
  out: <cam>/semantic/labels      mono8, train IDs (255 = ignore)
       <cam>/semantic/color       rgb8, palette colours
       <cam>/semantic/importance  mono8, selector importance x 255 (0 = unimportant, 255 = most)
       <cam>/semantic/confidence  mono8, max softmax probability x 255
       <cam>/semantic/camera_info the input CameraInfo with the output header (same resolution)
  semantic/label_info (latched): vision_msgs/LabelInfo when installed, else std_msgs/String with
       JSON {"classes": [...], "palette": [[r,g,b], ...], "ignore_id": 255}
  /diagnostics: diagnostic_msgs/DiagnosticArray, one status per camera, every diagnostics_period_s
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import fields

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from ..classes import IGNORE_INDEX, colorize
from ..node_config import NodeParams
from ..images import BadImageError, to_rgb
from .conversions import fill_image, stamp_ns

try:
    from vision_msgs.msg import LabelInfo, VisionClass  # type: ignore
except ImportError:  # not on PyPI: documented String fallback
    LabelInfo = None

DESCRIPTIONS = {
    "checkpoint": "FoR-Net checkpoint (.pt); empty = the packaged default model",
    "allow_untrained": "use random weights if the checkpoint cannot be loaded (tests only)",
    "device": "auto (CUDA if present), cpu, cuda, cuda:N",
    "precision": "auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16",
    "threads": "torch CPU threads for inference (0 = torch's default); on small CPUs leave a core to DDS",
    "input_size": "[H, W] the network sees; [0, 0] = the checkpoint's. Outputs keep the image size",
    "topk_ratio": "fraction of regions refined by the focus branches (run-time); < 0 = the checkpoint's",
    "cameras": "camera namespaces; each gets <cam>/image_raw -> <cam>/semantic/*",
    "compressed": "subscribe <cam>/image_raw/compressed (jpeg/png) instead of <cam>/image_raw",
    "max_input_age_ms": "drop frames whose stamp is older than this when the worker takes them (0 = off)",
    "latency_budget_ms": "diagnostics WARN when p95 end-to-end latency exceeds this",
    "stale_timeout_s": "diagnostics ERROR when a camera sent nothing for this long",
    "diagnostics_period_s": "period of /diagnostics",
    "input_reliability": "reliable or best_effort (camera drivers usually publish best_effort-compatible)",
    "input_depth": "input QoS history depth",
    "output_reliability": "reliable or best_effort",
    "output_depth": "output QoS history depth",
    "costmap_enabled": "publish semantic_costmap/* OccupancyGrids and semantic_points (needs camera_info)",
    "costmap_config": "YAML with ground_classes, obstacle_classes, layers [{name, classes, cost}]; empty = built-in",
    "grid_frame": "frame of the grids (the robot base, z = 0 is the ground)",
    "grid_resolution": "metres per cell",
    "grid_width": "cells along x",
    "grid_height": "cells along y",
    "grid_origin": "[x, y] of cell (0, 0)'s corner in grid_frame",
    "max_range": "ignore ground points farther than this from the camera (m)",
    "point_height": "z of the obstacle points in semantic_points (m)",
    "publish_ground_points": "also publish semantic_ground_points (drivable surface, a clearing source)",
    "costmap_transient_local": "latch the grids (match map_subscribe_transient_local in Nav2)",
    "use_tf": "camera pose from TF at the image stamp when tf2_ros exists, else camera_pose.<cam>",
}


class CameraPipe:
    """Per-camera state: newest pending frame, counters, latency windows, publishers."""

    def __init__(self, name: str):
        self.name = name
        self.pending = None  # (msg, receipt monotonic time)
        self.camera_info = None
        self.received = self.processed = self.overwritten = self.stale = self.bad = 0
        self.last_receipt = None
        self.window_received = self.window_processed = 0
        self.infer_ms = deque(maxlen=200)
        self.e2e_ms = deque(maxlen=200)
        self.age_ms = deque(maxlen=200)
        self.pubs = {}


def _p(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


class SegmentationNode(Node):
    def __init__(self, **kwargs):
        super().__init__("fornet_segmentation", **kwargs)
        self.params = self._declare_and_read()
        self.segmenter = self._load_segmenter()
        self.cams = {c: CameraPipe(c) for c in self.params.cameras}
        self.lock = threading.Condition()
        self.running = True
        self._make_io()
        self.costmap = self._make_costmap() if self.params.costmap_enabled else None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_t = time.monotonic()
        self.create_timer(self.params.diagnostics_period_s, self._publish_diagnostics)
        self.worker = threading.Thread(target=self._work, name="fornet_worker", daemon=True)
        self.worker.start()
        s = self.segmenter
        self.get_logger().info(
            f"FoR-Net {s.cfg.variant} on {s.device} ({str(s.dtype).split('.')[-1]}), input {s.input_size}, "
            f"K={s.topk_ratio}, cameras {list(self.params.cameras)}")

    # -- parameters ---------------------------------------------------------------------------
    def _declare_and_read(self) -> NodeParams:
        defaults = NodeParams()
        values = {}
        for f in fields(NodeParams):
            default = getattr(defaults, f.name)
            desc = ParameterDescriptor(description=DESCRIPTIONS.get(f.name, ""),
                                       read_only=False)
            if f.name == "topk_ratio":
                desc.floating_point_range = [FloatingPointRange(from_value=-1.0, to_value=1.0)]
            if f.name in ("input_depth", "output_depth"):
                desc.integer_range = [IntegerRange(from_value=1, to_value=100, step=1)]
            value = self.declare_parameter(f.name, list(default) if isinstance(default, tuple) else default, desc).value
            values[f.name] = value
        return NodeParams.from_values(values)

    def _on_set_parameters(self, params) -> SetParametersResult:
        changes = {prm.name: prm.value for prm in params}
        try:
            new = self.params.changed(changes)
        except ValueError as e:
            return SetParametersResult(successful=False, reason=str(e))
        self.params = new
        if "topk_ratio" in changes and new.topk_ratio >= 0:
            self.segmenter.topk_ratio = new.topk_ratio  # takes effect on the next frame
        return SetParametersResult(successful=True)

    def _make_costmap(self):
        import yaml
        from ..geometry import DEFAULT_LAYER_CONFIG, GeometryError, GridSpec, LayerConfig, Pose
        from .costmap import SemanticCostmap
        p = self.params
        poses = {}
        for cam in p.cameras:
            name = f"camera_pose.{cam.strip('/').replace('/', '_')}"
            v = self.declare_parameter(name, [0.0, 0.0, 1.5, 0.0, 0.0, 0.0], ParameterDescriptor(
                description=f"[x, y, z, roll, pitch, yaw] of camera {cam}'s body frame in grid_frame (m, rad)")).value
            try:
                if len(v) != 6:
                    raise GeometryError(f"needs 6 numbers, got {len(v)}")
                poses[cam] = Pose(*map(float, v))
            except GeometryError as e:
                raise ValueError(f"parameter '{name}': {e}") from e
        try:
            cfg = DEFAULT_LAYER_CONFIG
            if p.costmap_config:
                with open(p.costmap_config) as f:
                    cfg = yaml.safe_load(f)
            layers = LayerConfig.from_dict(cfg, self.segmenter.classes)
        except (OSError, yaml.YAMLError, GeometryError, AttributeError) as e:
            raise ValueError(f"parameter 'costmap_config' = {p.costmap_config or '(built-in)'}: {e}") from e
        grid = GridSpec(p.grid_resolution, p.grid_width, p.grid_height, tuple(p.grid_origin), p.grid_frame)
        return SemanticCostmap(self, grid, layers, p.max_range, p.point_height, p.publish_ground_points,
                               p.costmap_transient_local, poses, p.use_tf)

    def _load_segmenter(self):
        from ..checkpoint import CheckpointError, default_checkpoint_path, make_checkpoint
        from ..inference import Segmenter
        p = self.params
        if p.threads:
            import torch
            torch.set_num_threads(p.threads)
        path = p.checkpoint or None
        kw = dict(device=p.device, precision=p.precision, input_size=p.input_size if any(p.input_size) else None,
                  topk_ratio=p.topk_ratio if p.topk_ratio >= 0 else None)
        try:
            return Segmenter(path, **kw)
        except CheckpointError as e:
            where = p.checkpoint or f"(default) {default_checkpoint_path()}"
            if not p.allow_untrained:
                raise RuntimeError(f"parameter 'checkpoint' = {where}: {e}") from e
            self.get_logger().warning(f"parameter 'checkpoint' = {where}: {e}; allow_untrained is set, "
                                   "using RANDOM weights (outputs are meaningless)")
            from ..model import create_model
            model = create_model("fornet_s")
            return Segmenter(model=model, ckpt=make_checkpoint(model, input_size=p.input_size if any(p.input_size) else (512, 1024)), **kw)

    # -- topics -------------------------------------------------------------------------------
    def _qos(self, reliability: str, depth: int, latched: bool = False) -> QoSProfile:
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable"
                          else ReliabilityPolicy.BEST_EFFORT,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)

    def _make_io(self):
        p = self.params
        qin, qout = self._qos(p.input_reliability, p.input_depth), self._qos(p.output_reliability, p.output_depth)
        for name, cam in self.cams.items():
            if p.compressed:
                self.create_subscription(CompressedImage, f"{name}/image_raw/compressed",
                                         lambda m, c=cam: self._on_image(c, m), qin)
            else:
                self.create_subscription(Image, f"{name}/image_raw", lambda m, c=cam: self._on_image(c, m), qin)
            self.create_subscription(CameraInfo, f"{name}/camera_info", lambda m, c=cam: setattr(c, "camera_info", m), qin)
            for out in ("labels", "color", "importance", "confidence"):
                cam.pubs[out] = self.create_publisher(Image, f"{name}/semantic/{out}", qout)
            cam.pubs["camera_info"] = self.create_publisher(CameraInfo, f"{name}/semantic/camera_info", qout)
        latched = self._qos("reliable", 1, latched=True)
        s = self.segmenter
        if LabelInfo is not None:
            msg = LabelInfo()
            msg.class_map = [VisionClass(class_id=i, class_name=n) for i, n in enumerate(s.classes)]
            self.label_info_pub = self.create_publisher(LabelInfo, "semantic/label_info", latched)
        else:
            msg = String(data=json.dumps({"classes": s.classes, "palette": [list(c) for c in s.palette],
                                          "ignore_id": IGNORE_INDEX}))
            self.label_info_pub = self.create_publisher(String, "semantic/label_info", latched)
        self.label_info_pub.publish(msg)

    def _on_image(self, cam: CameraPipe, msg):
        now = time.monotonic()
        with self.lock:
            cam.received += 1
            cam.window_received += 1
            cam.last_receipt = now
            if cam.pending is not None:
                cam.overwritten += 1
            cam.pending = (msg, now)
            self.lock.notify()

    # -- worker -------------------------------------------------------------------------------
    def _work(self):
        while self.running:
            with self.lock:
                while self.running and not any(c.pending for c in self.cams.values()):
                    self.lock.wait(0.1)
                if not self.running:
                    return
                taken = [(c, c.pending) for c in self.cams.values() if c.pending]
                for c, _ in taken:
                    c.pending = None
            try:
                self._process(taken)
            except Exception as e:  # noqa: BLE001 - the worker must survive any single frame
                self.get_logger().error(f"inference failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)

    def _stamp_age_ms(self, header) -> float | None:
        ns = stamp_ns(header.stamp)
        if ns == 0:
            return None
        return (self.get_clock().now().nanoseconds - ns) / 1e6

    def _process(self, taken):
        p = self.params
        batch = []
        for cam, (msg, t_rx) in taken:
            age = self._stamp_age_ms(msg.header)
            if p.max_input_age_ms > 0 and age is not None and age > p.max_input_age_ms:
                cam.stale += 1
                continue
            try:
                rgb = to_rgb(msg)
            except BadImageError as e:
                cam.bad += 1
                self.get_logger().warning(f"{cam.name}: dropping bad image: {e}", throttle_duration_sec=2.0)
                continue
            batch.append((cam, msg, t_rx, rgb))
        if not batch:
            return
        t0 = time.monotonic()
        results = self.segmenter([b[3] for b in batch])
        infer_ms = (time.monotonic() - t0) * 1000 / len(batch)
        for (cam, msg, t_rx, _), r in zip(batch, results):
            self._publish(cam, msg.header, r)
        if self.costmap is not None:
            self.costmap.update([(cam.name, msg.header, r.labels, cam.camera_info)
                                 for (cam, msg, _, _), r in zip(batch, results)])
        for (cam, msg, t_rx, _), r in zip(batch, results):
            with self.lock:
                cam.processed += 1
                cam.window_processed += 1
                cam.infer_ms.append(infer_ms)
                cam.e2e_ms.append((time.monotonic() - t_rx) * 1000)
                age = self._stamp_age_ms(msg.header)
                if age is not None:
                    cam.age_ms.append(age)

    def _publish(self, cam: CameraPipe, header, r):
        p = self.params
        pubs = cam.pubs
        pubs["labels"].publish(fill_image(Image(), r.labels, header, "mono8"))
        if p.publish_color:
            pubs["color"].publish(fill_image(Image(), colorize(r.labels, self.segmenter.palette), header, "rgb8"))
        if p.publish_importance:
            imp = np.rint(r.importance * 255).astype(np.uint8)
            pubs["importance"].publish(fill_image(Image(), imp, header, "mono8"))
        if p.publish_confidence:
            conf = np.rint(r.confidence * 255).astype(np.uint8)
            pubs["confidence"].publish(fill_image(Image(), conf, header, "mono8"))
        if p.publish_camera_info and cam.camera_info is not None:
            info = cam.camera_info
            info.header = header
            pubs["camera_info"].publish(info)

    # -- diagnostics --------------------------------------------------------------------------
    def _publish_diagnostics(self):
        now = time.monotonic()
        dt = max(1e-6, now - self._diag_t)
        self._diag_t = now
        p, s = self.params, self.segmenter
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        for cam in self.cams.values():
            with self.lock:
                in_hz, out_hz = cam.window_received / dt, cam.window_processed / dt
                cam.window_received = cam.window_processed = 0
                e2e, inf, age = list(cam.e2e_ms), list(cam.infer_ms), list(cam.age_ms)
            st = DiagnosticStatus(name=f"fornet_ros: {cam.name}", hardware_id=str(s.device))
            silent = None if cam.last_receipt is None else now - cam.last_receipt
            if cam.last_receipt is None or silent > p.stale_timeout_s:
                st.level, st.message = DiagnosticStatus.ERROR, "no images" if silent is None else f"stale: no image for {silent:.1f} s"
            elif _p(e2e, 0.95) > p.latency_budget_ms:
                st.level, st.message = DiagnosticStatus.WARN, f"p95 latency {_p(e2e, 0.95):.0f} ms > budget {p.latency_budget_ms:.0f} ms"
            else:
                st.level, st.message = DiagnosticStatus.OK, "ok"
            vals = {
                "input_hz": f"{in_hz:.2f}", "processed_hz": f"{out_hz:.2f}", "received": cam.received,
                "processed": cam.processed, "dropped_overwritten": cam.overwritten, "dropped_stale": cam.stale,
                "bad_messages": cam.bad, "inference_ms_p50": f"{_p(inf, 0.5):.1f}", "inference_ms_p95": f"{_p(inf, 0.95):.1f}",
                "latency_ms_p50": f"{_p(e2e, 0.5):.1f}", "latency_ms_p95": f"{_p(e2e, 0.95):.1f}",
                "input_age_ms_p50": f"{_p(age, 0.5):.1f}", "device": str(s.device), "model": s.cfg.variant,
                "topk_ratio": f"{s.topk_ratio:g}",
            }
            st.values = [KeyValue(key=k, value=str(v)) for k, v in vals.items()]
            arr.status.append(st)
        self.diag_pub.publish(arr)

    def stop(self):
        self.running = False
        with self.lock:
            self.lock.notify_all()
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
