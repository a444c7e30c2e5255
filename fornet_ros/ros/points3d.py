"""Depth and LiDAR inputs -> labelled PointCloud2 outputs (issue #14); the work is in
:mod:`fornet_ros.mapping.points`, this is message plumbing.

- ``<cam>/depth/image_raw`` (16UC1 mm or 32FC1 m, registered to the colour camera, or registered
  here with ``depth_registration``: ``<cam>/depth/camera_info`` + ``depth_extrinsic``) -> the colour
  frame's labels and confidence on an organised, pixel-aligned ``<cam>/semantic/points``
  (x, y, z, label, confidence; the image's optical frame and header) — the layout Nav2's semantic
  segmentation layer reads.
- ``lidar_topic`` (PointCloud2) -> ``semantic/lidar_points`` (x, y, z, label, confidence; the LiDAR's
  frame and header), points outside the image, behind or hidden from the camera dropped.
Both are paired with the colour frame by stamp within ``sync_slop_ms`` (newest-first buffers; the
colour path never waits for them); unmatched frames and invalid depth are counted per camera.
"""

from __future__ import annotations

import threading

from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from ..mapping import Pose
from ..mapping.points import StampMatcher, cloud_array, depth_points, lidar_labels, lidar_to_optical, register_depth
from ..node.frames import stamp_ns
from ..node.images import decode_depth
from .conversions import camera_model_from_info, cloud_xyz, make_labelled_cloud


class LabelledPoints:
    def __init__(self, node, params, poses: dict[str, Pose], qin, qout):
        self.params, self.poses = params, poses
        slop = int(params.sync_slop_ms * 1e6)
        self.lock = threading.Lock()
        self.counts = {cam: {} for cam in params.cameras}
        self.depth, self.depth_info = {}, {}
        self.extrinsic = Pose.from_list(params.depth_extrinsic).transform()  # depth optical -> colour optical
        if params.depth_enabled:
            for cam in params.cameras:
                self.depth[cam] = StampMatcher(slop)
                node.create_subscription(Image, f"{cam}/depth/image_raw",
                                         lambda m, c=cam: self._buffer(self.depth[c], m), qin)
                if params.depth_registration:
                    node.create_subscription(CameraInfo, f"{cam}/depth/camera_info",
                                             lambda m, c=cam: self._set_info(c, m), qin)
            self.points_pub = {cam: node.create_publisher(PointCloud2, f"{cam}/semantic/points", qout)
                               for cam in params.cameras}
        self.lidar_cam = (params.lidar_camera or params.cameras[0]) if params.lidar_topic else None
        if self.lidar_cam:
            if self.lidar_cam not in params.cameras:
                raise ValueError(f"parameter 'lidar_camera' = {self.lidar_cam!r} is not one of the cameras")
            self.lidar = StampMatcher(slop)
            node.create_subscription(PointCloud2, params.lidar_topic, lambda m: self._buffer(self.lidar, m), qin)
            self.lidar_pub = node.create_publisher(PointCloud2, "semantic/lidar_points", qout)

    def subscribed(self, cam: str) -> bool:
        """Does anyone subscribe to a labelled cloud made from ``cam``'s frames?"""
        return ((cam in self.depth and self.points_pub[cam].get_subscription_count() > 0)
                or (cam == self.lidar_cam and self.lidar_pub.get_subscription_count() > 0))

    def _buffer(self, matcher: StampMatcher, msg):
        with self.lock:
            matcher.add(stamp_ns(msg.header.stamp), msg)

    def _set_info(self, cam, msg):
        with self.lock:
            self.depth_info[cam] = msg

    def _count(self, cam, key, n=1):
        with self.lock:  # the diagnostics timer reads these from another thread
            self.counts[cam][key] = self.counts[cam].get(key, 0) + n

    def counts_of(self, cam: str) -> dict:
        with self.lock:
            return dict(self.counts[cam])

    def process(self, cam: str, header, result, info):
        """After a colour frame of ``cam`` is segmented: publish what its depth / the LiDAR give.
        Returns the frame's organised depth points (optical frame; the costmap places obstacles
        with them) or None."""
        stamp = stamp_ns(header.stamp)
        pts = self._depth(cam, header, stamp, result, info) if cam in self.depth else None
        if cam == self.lidar_cam:
            self._lidar(cam, stamp, result, info)
        return pts

    def _depth(self, cam: str, header, stamp: int, result, info):
        with self.lock:
            msg = self.depth[cam].match(stamp)
            dinfo = self.depth_info.get(cam)
        if msg is None or info is None:
            self._count(cam, "depth_unmatched" if msg is None else "depth_without_camera_info")
            return None
        img = decode_depth(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))
        color, (lo, hi) = camera_model_from_info(info), self.params.depth_range
        if self.params.depth_registration:  # reproject the depth camera's points into the colour camera
            if dinfo is None:
                self._count(cam, "depth_without_depth_camera_info")
                return None
            src, _ = depth_points(img, camera_model_from_info(dinfo), msg.encoding, lo, hi)
            img = register_depth(src, color, *self.extrinsic)
            pts, st = depth_points(img, color, "32FC1", lo, hi)  # invalid: the cloud's, registration holes included
        else:
            pts, st = depth_points(img, color, msg.encoding, lo, hi)
        self._count(cam, "depth_matched")
        self._count(cam, "depth_invalid_px", st.pixels - st.valid)
        if result.labels.shape != img.shape:
            self._count(cam, "depth_size_mismatch")
            return None
        self.points_pub[cam].publish(make_labelled_cloud(header, cloud_array(pts, result.labels, result.confidence)))
        return pts

    def _lidar(self, cam: str, stamp: int, result, info) -> None:
        with self.lock:
            msg = self.lidar.match(stamp)
        if msg is None or info is None:
            self._count(cam, "lidar_unmatched" if msg is None else "lidar_without_camera_info")
            return
        xyz = cloud_xyz(msg)
        R, t = lidar_to_optical(self.poses[cam], Pose.from_list(self.params.lidar_pose))
        keep, lab, conf, st = lidar_labels(xyz, R, t, camera_model_from_info(info), result.labels,
                                           result.confidence)
        self._count(cam, "lidar_matched")
        self._count(cam, "lidar_points_labelled", st.labelled)
        self._count(cam, "lidar_points_dropped", st.points - st.labelled)
        self.lidar_pub.publish(make_labelled_cloud(msg.header, cloud_array(xyz[keep], lab[keep], conf[keep])))
