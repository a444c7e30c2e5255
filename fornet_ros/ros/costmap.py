"""Semantic costmap publishing: label images -> nav_msgs/OccupancyGrid layers + PointCloud2.

The geometry (projection, layers, the multi-camera fusion window, the lookup cache) is
:mod:`fornet_ros.mapping`; this module adds TF look-ups and publishers.

Topics: semantic_costmap/<layer> and semantic_costmap/combined (OccupancyGrid, -1 unknown,
0..100 cost, stamped with the newest non-zero image stamp used), semantic_points (PointCloud2 x, y,
z, label: obstacle ground-contact points at ``point_height``), and optionally
semantic_ground_points (drivable-surface points at z = 0, a clearing source).

Robustness: each camera's contribution is computed on its own - one camera whose CameraInfo or
projection fails is left out (and reported to the caller), the others still make the grids. The
fusion window runs on receipt time, so a wrong header stamp cannot pin or empty the grids, and
labels are projected at a bounded resolution (:data:`fornet_ros.mapping.PROJECTION_MAX_PIXELS`)
with a byte-bounded lookup cache, so a huge frame costs one bounded lookup build.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header

from ..classes import IGNORE_INDEX
from ..mapping import (FusionWindow, GridFuser, GridMemory, GridSpec, LookupCache, Pose, build_lookup,
                      downsample_labels, transform_from_quaternion)
from ..mapping.points import obstacle_points
from ..node.frames import stamp_ns
from .conversions import camera_model_from_info, make_cloud, make_grid, qos

LOOKUP_CACHE_BYTES = 256 << 20


class CostmapFrame(NamedTuple):
    """One segmented frame for :meth:`SemanticCostmap.update`."""

    cam: str
    header: object
    labels: np.ndarray  # (H, W) uint8 train IDs
    info: object  # its CameraInfo, or None (the camera is left out)
    receipt_s: float  # receipt time (the fusion window's clock)
    confidence: np.ndarray | None = None  # (H, W) float32: gating with costmap_min_confidence
    depth: np.ndarray | None = None  # (H, W, 3) organised depth points (optical frame): obstacles from them


class SemanticCostmap:
    def __init__(self, node, params, layer_config, poses: dict[str, Pose]):
        """``params``: the node's NodeParams (grid_*, max_range, point_height, publish_ground_points,
        costmap_transient_local, costmap_window_s, use_tf); ``poses``: camera -> Pose when TF has none."""
        p = params
        self.node, self.cfg, self.poses = node, layer_config, poses
        self.grid = GridSpec(p.grid_resolution, p.grid_width, p.grid_height, p.grid_origin, p.grid_frame)
        self.max_range, self.point_height = p.max_range, p.point_height
        self.cache = LookupCache(LOOKUP_CACHE_BYTES)
        self.window = FusionWindow(p.costmap_window_s)
        self.memory = GridMemory(p.costmap_decay_s)
        self.min_confidence, self.obstacle_height = p.costmap_min_confidence, p.depth_obstacle_height
        grid_qos = qos("reliable", 1, latched=p.costmap_transient_local)
        self.grid_pubs = {name: node.create_publisher(OccupancyGrid, f"semantic_costmap/{name}", grid_qos)
                          for name in [layer.name for layer in layer_config.layers] + ["combined"]}
        self.points_pub = node.create_publisher(PointCloud2, "semantic_points", 5)
        self.ground_pub = (node.create_publisher(PointCloud2, "semantic_ground_points", 5)
                           if p.publish_ground_points else None)
        self.tf_buffer = None
        if p.use_tf:
            try:
                from tf2_ros import Buffer, TransformListener  # type: ignore
                self.tf_buffer = Buffer()
                self._tf_listener = TransformListener(self.tf_buffer, node)
            except ImportError:
                node.get_logger().info("tf2_ros not available: camera poses come from the camera_pose.* parameters")

    def _pose(self, cam: str, header):
        if self.tf_buffer is not None and header.frame_id:
            try:
                from rclpy.time import Time
                tf = self.tf_buffer.lookup_transform(self.grid.frame_id, header.frame_id, Time.from_msg(header.stamp))
                t, q = tf.transform.translation, tf.transform.rotation
                return transform_from_quaternion((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))
            except Exception as e:  # noqa: BLE001 - tf2 raises several lookup errors
                self.node.get_logger().warning(f"{cam}: no TF {self.grid.frame_id} <- {header.frame_id} ({e}); "
                                               "using the camera_pose parameter", throttle_duration_sec=5.0)
        return self.poses[cam]

    def lookup(self, cam: str, info, header, shape):
        model = camera_model_from_info(info)  # raises GeometryError on bad CameraInfo
        pose = self._pose(cam, header)
        key = (cam, model, pose if isinstance(pose, Pose) else (tuple(np.round(pose[0], 6).ravel()),
                                                                tuple(np.round(pose[1], 4))), shape)
        return self.cache.get(key, lambda: build_lookup(model, pose, self.grid, shape, max_range=self.max_range))

    def update(self, frames, now_s: float) -> dict[str, str]:
        """frames: :class:`CostmapFrame` s (or tuples in its order) just segmented;
        ``now_s``: the receipt clock now. Fuses them with the other cameras' labels received within
        the window and publishes when at least one camera could be projected. Returns
        {camera: problem} for the cameras of ``frames`` left out by an error (any exception of
        their own: bad CameraInfo, projection); they are logged (throttled) here."""
        problems = {}
        for f in (CostmapFrame(*f) for f in frames):
            labels, obstacles = f.labels, None
            try:
                if self.min_confidence > 0 and f.confidence is not None:
                    labels = np.where(f.confidence >= self.min_confidence, labels, np.uint8(IGNORE_INDEX))
                if f.depth is not None:
                    obstacles = obstacle_points(f.depth, labels, self._pose(f.cam, f.header),
                                                self.cfg.lut("obstacle"), self.obstacle_height)
            except Exception as e:  # noqa: BLE001 - this camera's depth or pose only
                problems[f.cam] = f"costmap: {type(e).__name__}: {e}"
            self.window.add(f.cam, f.receipt_s, (f.header, downsample_labels(labels), f.info, obstacles))
        new = {f[0] for f in frames}
        fuser = GridFuser(self.grid, self.cfg)
        used = []
        for cam, (header, labels, info, obstacles) in self.window.current(now_s):
            if info is None:
                continue
            try:
                fuser.add(labels, self.lookup(cam, info, header, labels.shape), obstacles)
            except Exception as e:  # noqa: BLE001 - one camera's failure must not cost the others their grid
                if cam in new:
                    problems[cam] = f"costmap: {type(e).__name__}: {e}"
                    self.node.get_logger().warning(f"{cam}: no costmap from it: {type(e).__name__}: {e}",
                                                   throttle_duration_sec=5.0)
                continue
            used.append((stamp_ns(header.stamp), header.stamp))
        if not used:
            return problems
        newest_ns, newest = max(used, key=lambda u: u[0])  # only zero stamps: the node's clock
        out_header = Header(stamp=newest if newest_ns else self.node.get_clock().now().to_msg(),
                            frame_id=self.grid.frame_id)
        for name, values in self.memory(fuser.grids(), now_s).items():
            self.grid_pubs[name].publish(make_grid(out_header, self.grid, values))
        xy, labels = fuser.obstacle_points()
        xyz = np.concatenate([xy, np.full((len(xy), 1), self.point_height, np.float32)], 1)
        self.points_pub.publish(make_cloud(out_header, xyz, labels))
        if self.ground_pub is not None:
            g = np.concatenate(fuser.ground_points) if fuser.ground_points else np.zeros((0, 2), np.float32)
            self.ground_pub.publish(make_cloud(out_header, np.concatenate([g, np.zeros((len(g), 1), np.float32)], 1),
                                               np.zeros(len(g), np.uint32)))
        return problems
