"""Semantic costmap publishing: label images -> nav_msgs/OccupancyGrid layers + PointCloud2.

All geometry is in :mod:`fornet_ros.geometry`; this module only converts messages and caches the
pixel -> cell lookups per (CameraInfo, pose, label size).

Topics: semantic_costmap/<layer> and semantic_costmap/combined (OccupancyGrid, -1 unknown,
0..100 cost, stamped with the image time), semantic_points (PointCloud2 x, y, z, label: obstacle
ground-contact points at ``point_height``), and optionally semantic_ground_points (drivable-surface
points at z = 0, a clearing source).
"""

from __future__ import annotations

import array

import numpy as np
from nav_msgs.msg import OccupancyGrid
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2, PointField

from .conversions import stamp_ns
from ..geometry import CameraModel, GeometryError, GridFuser, Pose, build_lookup, transform_from_quaternion

try:  # a ROS distro's helper; PyPI has none
    from sensor_msgs_py import point_cloud2 as _pc2  # type: ignore
except ImportError:
    _pc2 = None


def camera_model_from_info(info) -> CameraModel:
    roi = info.roi
    return CameraModel(int(info.width), int(info.height), tuple(float(v) for v in info.k),
                       tuple(float(v) for v in info.d), info.distortion_model or "plumb_bob",
                       int(info.binning_x), int(info.binning_y),
                       (int(roi.x_offset), int(roi.y_offset), int(roi.height), int(roi.width)))


def make_cloud(header, xyz: np.ndarray, labels: np.ndarray) -> PointCloud2:
    """x, y, z float32 + label uint32 (16-byte points). sensor_msgs_py.create_cloud when present;
    otherwise the same layout packed with a numpy structured array."""
    fields = [PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
              PointField(name="y", offset=4, datatype=PointField.FLOAT32, count=1),
              PointField(name="z", offset=8, datatype=PointField.FLOAT32, count=1),
              PointField(name="label", offset=12, datatype=PointField.UINT32, count=1)]
    dtype = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("label", "<u4")])
    pts = np.empty(len(xyz), dtype)
    if len(xyz):
        pts["x"], pts["y"], pts["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        pts["label"] = labels
    if _pc2 is not None:
        return _pc2.create_cloud(header, fields, pts.tolist())
    msg = PointCloud2(header=header, height=1, width=len(pts), fields=fields, is_bigendian=False,
                      point_step=16, row_step=16 * len(pts), is_dense=True)
    data = array.array("B")
    data.frombytes(pts.tobytes())
    msg.data = data
    return msg


def make_grid_msg(header, grid, values: np.ndarray) -> OccupancyGrid:
    msg = OccupancyGrid(header=header)
    msg.info.map_load_time = header.stamp
    msg.info.resolution = float(grid.resolution)
    msg.info.width, msg.info.height = grid.width, grid.height
    msg.info.origin.position.x, msg.info.origin.position.y = float(grid.origin[0]), float(grid.origin[1])
    msg.info.origin.orientation.w = 1.0
    data = array.array("b")
    data.frombytes(np.ascontiguousarray(values, np.int8).tobytes())
    msg.data = data
    return msg


class SemanticCostmap:
    def __init__(self, node, grid, layer_config, max_range: float, point_height: float,
                 publish_ground_points: bool, transient_local: bool, poses: dict, use_tf: bool):
        self.node, self.grid, self.cfg = node, grid, layer_config
        self.max_range, self.point_height = max_range, point_height
        self.poses = poses  # camera name -> Pose
        self.cache = {}
        self.latest = {}  # camera -> (header, labels, CameraInfo): every grid fuses all cameras
        self.fusion_window_s = 0.5
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL if transient_local else DurabilityPolicy.VOLATILE)
        self.grid_pubs = {l.name: node.create_publisher(OccupancyGrid, f"semantic_costmap/{l.name}", qos)
                          for l in layer_config.layers}
        self.grid_pubs["combined"] = node.create_publisher(OccupancyGrid, "semantic_costmap/combined", qos)
        self.points_pub = node.create_publisher(PointCloud2, "semantic_points", 5)
        self.ground_pub = node.create_publisher(PointCloud2, "semantic_ground_points", 5) if publish_ground_points else None
        self.tf_buffer = None
        if use_tf:
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
        if key not in self.cache:
            if len(self.cache) > 32:
                self.cache.clear()
            self.cache[key] = build_lookup(model, pose, self.grid, shape, max_range=self.max_range)
        return self.cache[key]

    def update(self, frames) -> int:
        """frames: [(camera name, header, labels, CameraInfo or None)] just segmented. Fuses them with
        the other cameras' latest labels whose stamps lie within ``fusion_window_s`` of the newest,
        publishes when at least one camera could be projected and returns how many were used.
        Raises nothing: bad camera models are logged (throttled) and skipped."""
        for cam, header, labels, info in frames:
            self.latest[cam] = (header, labels, info)
        newest = max(stamp_ns(h.stamp) for h, _, _ in self.latest.values())
        fuser = GridFuser(self.grid, self.cfg)
        used, stamp_header = 0, None
        for cam, (header, labels, info) in self.latest.items():
            if info is None or newest - stamp_ns(header.stamp) > self.fusion_window_s * 1e9:
                continue
            try:
                fuser.add(labels, self.lookup(cam, info, header, labels.shape))
            except GeometryError as e:
                self.node.get_logger().warning(f"{cam}: bad CameraInfo, no costmap from it: {e}", throttle_duration_sec=5.0)
                continue
            used += 1
            if stamp_header is None or stamp_ns(header.stamp) > stamp_ns(stamp_header.stamp):
                stamp_header = header
        if not used:
            return 0
        from std_msgs.msg import Header
        out_header = Header(stamp=stamp_header.stamp, frame_id=self.grid.frame_id)
        for name, values in fuser.grids().items():
            self.grid_pubs[name].publish(make_grid_msg(out_header, self.grid, values))
        xy, labels = fuser.obstacle_points()
        xyz = np.concatenate([xy, np.full((len(xy), 1), self.point_height, np.float32)], 1)
        self.points_pub.publish(make_cloud(out_header, xyz, labels))
        if self.ground_pub is not None:
            g = np.concatenate(fuser.ground_points) if fuser.ground_points else np.zeros((0, 2), np.float32)
            self.ground_pub.publish(make_cloud(out_header, np.concatenate([g, np.zeros((len(g), 1), np.float32)], 1),
                                               np.zeros(len(g), np.uint32)))
        return used
