"""numpy -> ROS messages (and the few message fields the node reads). Decoding images is
:mod:`fornet_ros.node.images` (pure); everything here builds or reads rclpy messages."""

from __future__ import annotations

import array
import json

import numpy as np
from nav_msgs.msg import OccupancyGrid
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import String

from ..classes import IGNORE_INDEX
from ..mapping import CameraModel

try:
    from vision_msgs.msg import LabelInfo, VisionClass  # type: ignore
except ImportError:  # not on PyPI: documented String fallback
    LabelInfo = None

ENCODING_OF = {(np.dtype(np.uint8), 1): "mono8", (np.dtype(np.uint8), 3): "rgb8",
               (np.dtype(np.float32), 1): "32FC1", (np.dtype(np.uint16), 1): "mono16"}
POINT_FIELDS = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32 if n != "label" else PointField.UINT32,
                           count=1) for i, n in enumerate(("x", "y", "z", "label"))]


def _bytes(arr: np.ndarray, typecode: str = "B") -> array.array:
    data = array.array(typecode)
    data.frombytes(np.ascontiguousarray(arr).tobytes())  # rclpy keeps an array as is (no per-element checks)
    return data


def fill_image(msg, arr: np.ndarray, header, encoding: str | None = None):
    """Fill a sensor_msgs/Image from an (H, W) or (H, W, 3) array; returns msg."""
    arr = np.ascontiguousarray(arr)
    nchan = 1 if arr.ndim == 2 else arr.shape[2]
    msg.header = header
    msg.height, msg.width = arr.shape[:2]
    msg.encoding = encoding or ENCODING_OF[(arr.dtype, nchan)]
    msg.is_bigendian = 0
    msg.step = arr.shape[1] * nchan * arr.dtype.itemsize
    msg.data = _bytes(arr)
    return msg


def rgb_to_image(msg, rgb: np.ndarray, header, encoding: str = "rgb8"):
    """For publishers (tests, benchmarks): RGB array -> Image in ``encoding`` (rgb8/bgr8/mono8)."""
    import cv2
    convert = {"rgb8": None, "bgr8": cv2.COLOR_RGB2BGR, "mono8": cv2.COLOR_RGB2GRAY}
    if encoding not in convert:
        raise ValueError(f"rgb_to_image supports rgb8, bgr8, mono8, not {encoding!r}")
    return fill_image(msg, rgb if convert[encoding] is None else cv2.cvtColor(rgb, convert[encoding]), header, encoding)


def camera_model_from_info(info) -> CameraModel:
    """sensor_msgs/CameraInfo -> CameraModel (raises GeometryError on a bad one)."""
    roi = info.roi
    return CameraModel(int(info.width), int(info.height), tuple(float(v) for v in info.k),
                       tuple(float(v) for v in info.d), info.distortion_model or "plumb_bob",
                       int(info.binning_x), int(info.binning_y),
                       (int(roi.x_offset), int(roi.y_offset), int(roi.height), int(roi.width)))


def make_cloud(header, xyz: np.ndarray, labels: np.ndarray) -> PointCloud2:
    """PointCloud2 of x, y, z float32 + label uint32 (16-byte points), packed with a structured array."""
    pts = np.empty(len(xyz), np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("label", "<u4")]))
    if len(xyz):
        pts["x"], pts["y"], pts["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        pts["label"] = labels
    return PointCloud2(header=header, height=1, width=len(pts), fields=POINT_FIELDS, is_bigendian=False,
                       point_step=16, row_step=16 * len(pts), is_dense=True, data=_bytes(pts))


LABELLED_FIELDS = [PointField(name=n, offset=o, datatype=t, count=1) for n, o, t in (
    ("x", 0, PointField.FLOAT32), ("y", 4, PointField.FLOAT32), ("z", 8, PointField.FLOAT32),
    ("label", 12, PointField.UINT32), ("confidence", 16, PointField.FLOAT32))]


def make_labelled_cloud(header, records: np.ndarray) -> PointCloud2:
    """PointCloud2 from :data:`fornet_ros.mapping.points.CLOUD_DTYPE` records; an (H, W) array stays
    organised (height H, width W: pixel-aligned with the image), NaN points kept (is_dense False)."""
    h, w = records.shape if records.ndim == 2 else (1, records.shape[0])
    return PointCloud2(header=header, height=h, width=w, fields=LABELLED_FIELDS, is_bigendian=False,
                       point_step=records.dtype.itemsize, row_step=records.dtype.itemsize * w,
                       is_dense=False, data=_bytes(np.ascontiguousarray(records)))


def cloud_xyz(msg) -> np.ndarray:
    """(N, 3) float64 x, y, z of a little-endian PointCloud2 with FLOAT32 x, y, z fields."""
    fields = {f.name: f for f in msg.fields}
    if msg.is_bigendian or not all(n in fields and fields[n].datatype == PointField.FLOAT32 for n in "xyz"):
        raise ValueError("PointCloud2 needs little-endian FLOAT32 x, y, z fields")
    n = msg.width * msg.height
    dt = np.dtype({"names": list("xyz"), "formats": ["<f4"] * 3, "offsets": [fields[c].offset for c in "xyz"],
                   "itemsize": msg.point_step})
    rec = np.frombuffer(bytes(msg.data), dt, count=n) if msg.row_step == msg.point_step * msg.width else \
        np.concatenate([np.frombuffer(bytes(msg.data)[r * msg.row_step:(r + 1) * msg.row_step], dt, count=msg.width)
                        for r in range(msg.height)])
    return np.stack([rec["x"], rec["y"], rec["z"]], -1).astype(np.float64)


def make_grid(header, grid, values: np.ndarray) -> OccupancyGrid:
    """OccupancyGrid of a GridSpec with int8 values (-1 unknown, 0..100)."""
    msg = OccupancyGrid(header=header)
    msg.info.map_load_time = header.stamp
    msg.info.resolution = float(grid.resolution)
    msg.info.width, msg.info.height = grid.width, grid.height
    msg.info.origin.position.x, msg.info.origin.position.y = float(grid.origin[0]), float(grid.origin[1])
    msg.info.origin.orientation.w = 1.0
    msg.data = _bytes(values.astype(np.int8, copy=False), "b")
    return msg


def label_info(classes, palette):
    """vision_msgs/LabelInfo when installed, else std_msgs/String with JSON
    {"classes": [...], "palette": [[r, g, b], ...], "ignore_id": 255}."""
    if LabelInfo is not None:
        return LabelInfo(class_map=[VisionClass(class_id=i, class_name=n) for i, n in enumerate(classes)])
    return String(data=json.dumps({"classes": list(classes), "palette": [list(c) for c in palette],
                                   "ignore_id": IGNORE_INDEX}))


def descriptor(spec) -> ParameterDescriptor:
    """The ROS descriptor of a :class:`~fornet_ros.node.params.ParamSpec`: static parameters are
    read-only (rclpy itself rejects changes); floats also take integers."""
    d = ParameterDescriptor(description=spec.description, additional_constraints=spec.constraint,
                            read_only=not spec.runtime, dynamic_typing=spec.type.startswith("float"))
    if spec.range and spec.type == "float":
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.range[0]), to_value=float(spec.range[1]))]
    if spec.range and spec.type == "int":
        d.integer_range = [IntegerRange(from_value=spec.range[0], to_value=spec.range[1], step=1)]
    return d


def qos(reliability: str, depth: int, latched: bool = False) -> QoSProfile:
    """A QoS profile from the node's ``*_reliability`` / ``*_depth`` parameters."""
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable"
                      else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def publication_seq(info) -> tuple:
    """(sequence number, publisher id) from an rclpy MessageInfo, or () where the middleware
    gives none (sensor_msgs/Image itself has no sequence number in ROS 2)."""
    seq = info.get("publication_sequence_number") if isinstance(info, dict) else None
    if not seq or seq >= 2**63:  # 0 / None / RMW_MESSAGE_INFO_SEQUENCE_NUMBER_UNSUPPORTED
        return ()
    gid = info.get("publisher_gid")
    return seq, None if gid is None else repr(gid)  # per publisher: two drivers on one topic are not gaps
