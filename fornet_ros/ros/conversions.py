"""sensor_msgs <-> numpy. cv_bridge when a ROS distro provides it; otherwise the pure-Python
``rosbags-image`` converter (PyPI has no working cv_bridge). Both are duck-typed on the message
fields, so these helpers work for rclpy and rosbags messages alike."""

from __future__ import annotations

import array

import numpy as np

try:  # a ROS distro's cv_bridge
    from cv_bridge import CvBridge  # type: ignore

    _BRIDGE = CvBridge()
except Exception:  # noqa: BLE001 - absent, or present but broken (the PyPI one)
    _BRIDGE = None

from rosbags.image import ImageError, compressed_image_to_cvimage, image_to_cvimage
from rosbags.image.image import to_cvtype


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return stamp.sec * 10**9 + stamp.nanosec


class BadImageError(ValueError):
    """An image message that cannot be turned into an RGB array (says why)."""


class _Packed:
    """An Image view with row padding removed (rosbags-image assumes step == width * pixel size)."""

    def __init__(self, msg, data):
        self.encoding, self.height, self.width = msg.encoding, msg.height, msg.width
        self.is_bigendian, self.data = msg.is_bigendian, data


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8, mono16, bayer_*, ...) -> (H, W, 3) uint8 RGB."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0:
        raise BadImageError(f"empty image ({w}x{h})")
    try:
        depth, _, _, nchan = to_cvtype(msg.encoding)
    except ImageError as e:
        raise BadImageError(f"unsupported encoding {msg.encoding!r}") from e
    row = w * nchan * depth // 8
    data = memoryview(msg.data).cast("B") if not isinstance(msg.data, (bytes, bytearray)) else memoryview(msg.data)
    if step < row:
        raise BadImageError(f"step {step} < width {w} x {nchan * depth // 8} bytes per pixel ({msg.encoding})")
    if len(data) != step * h:
        raise BadImageError(f"data has {len(data)} bytes, expected step {step} x height {h} = {step * h}")
    if _BRIDGE is not None:
        try:
            return np.ascontiguousarray(_BRIDGE.imgmsg_to_cv2(msg, "rgb8"))
        except Exception as e:  # noqa: BLE001 - cv_bridge raises its own CvBridgeError
            raise BadImageError(f"cv_bridge: {e}") from e
    buf = np.frombuffer(data, np.uint8).reshape(h, step)
    if step != row:
        buf = np.ascontiguousarray(buf[:, :row])
    try:
        rgb = image_to_cvimage(_Packed(msg, buf), "rgb8")
    except ImageError as e:
        raise BadImageError(f"cannot convert {msg.encoding!r} to rgb8: {e}") from e
    return np.ascontiguousarray(rgb)


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> (H, W, 3) uint8 RGB."""
    if len(msg.data) == 0:
        raise BadImageError("empty CompressedImage")
    try:
        img = compressed_image_to_cvimage(msg, None)
    except AssertionError as e:  # rosbags-image asserts that imdecode succeeded
        raise BadImageError(f"cannot decode CompressedImage (format {msg.format!r})") from e
    import cv2
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


ENCODING_OF = {(np.dtype(np.uint8), 1): "mono8", (np.dtype(np.uint8), 3): "rgb8",
               (np.dtype(np.float32), 1): "32FC1", (np.dtype(np.uint16), 1): "mono16"}


def fill_image(msg, arr: np.ndarray, header, encoding: str | None = None):
    """Fill a sensor_msgs/Image from an (H, W) or (H, W, 3) array; returns msg."""
    arr = np.ascontiguousarray(arr)
    nchan = 1 if arr.ndim == 2 else arr.shape[2]
    msg.header = header
    msg.height, msg.width = arr.shape[:2]
    msg.encoding = encoding or ENCODING_OF[(arr.dtype, nchan)]
    msg.is_bigendian = 0
    msg.step = arr.shape[1] * nchan * arr.dtype.itemsize
    data = array.array("B")
    data.frombytes(arr.data)  # fast path: rclpy keeps an array('B') as is (no per-byte checks)
    msg.data = data
    return msg


def rgb_to_image(msg, rgb: np.ndarray, header, encoding: str = "rgb8"):
    """For publishers (tests, bag replay): RGB array -> Image in ``encoding`` (rgb8/bgr8/mono8)."""
    import cv2
    if encoding == "bgr8":
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif encoding == "mono8":
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif encoding != "rgb8":
        raise ValueError(f"rgb_to_image supports rgb8, bgr8, mono8, not {encoding!r}")
    return fill_image(msg, rgb, header, encoding)
