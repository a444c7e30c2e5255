"""Image messages -> RGB arrays (numpy + OpenCV; no ROS, no bag library).

Works on the raw fields of ``sensor_msgs/Image`` (encoding, height, width, step, is_bigendian,
data) and ``sensor_msgs/CompressedImage`` (format, data), so rclpy and rosbags messages decode
alike: :func:`to_rgb` takes either. Encodings are the ``sensor_msgs/image_encodings`` names
cv_bridge handles for colour images; 16-bit images are scaled to 8 bits (x 255 / 65535).
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import FornetError


class BadImageError(FornetError):
    """An image message that cannot be turned into an RGB array (says why)."""


# encoding -> (dtype, channels, cv2 conversion to RGB or None when already RGB)
_BAYER = {"rggb": cv2.COLOR_BayerBG2RGB, "bggr": cv2.COLOR_BayerRG2RGB, "gbrg": cv2.COLOR_BayerGR2RGB,
          "grbg": cv2.COLOR_BayerGB2RGB}  # OpenCV names Bayer patterns by the 2nd row's 2nd/3rd pixel
ENCODINGS = {
    "rgb8": (np.uint8, 3, None), "bgr8": (np.uint8, 3, cv2.COLOR_BGR2RGB), "8UC3": (np.uint8, 3, cv2.COLOR_BGR2RGB),
    "rgba8": (np.uint8, 4, cv2.COLOR_RGBA2RGB), "bgra8": (np.uint8, 4, cv2.COLOR_BGRA2RGB),
    "8UC4": (np.uint8, 4, cv2.COLOR_BGRA2RGB),
    "mono8": (np.uint8, 1, cv2.COLOR_GRAY2RGB), "8UC1": (np.uint8, 1, cv2.COLOR_GRAY2RGB),
    "rgb16": (np.uint16, 3, None), "bgr16": (np.uint16, 3, cv2.COLOR_BGR2RGB),
    "16UC3": (np.uint16, 3, cv2.COLOR_BGR2RGB),
    "rgba16": (np.uint16, 4, cv2.COLOR_RGBA2RGB), "bgra16": (np.uint16, 4, cv2.COLOR_BGRA2RGB),
    "mono16": (np.uint16, 1, cv2.COLOR_GRAY2RGB), "16UC1": (np.uint16, 1, cv2.COLOR_GRAY2RGB),
    "yuv422": (np.uint8, 2, cv2.COLOR_YUV2RGB_UYVY), "uyvy": (np.uint8, 2, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": (np.uint8, 2, cv2.COLOR_YUV2RGB_YUY2), "yuyv": (np.uint8, 2, cv2.COLOR_YUV2RGB_YUY2),
    **{f"bayer_{p}{b}": (np.uint8 if b == 8 else np.uint16, 1, code) for p, code in _BAYER.items() for b in (8, 16)},
}


def _bytes(data) -> np.ndarray:
    try:
        return np.frombuffer(data, np.uint8)  # bytes, array('B') (rclpy), numpy (rosbags)
    except (TypeError, ValueError):
        return np.asarray(data, np.uint8).ravel()  # a plain list


def _pixels(encoding: str, height: int, width: int, step: int, data, is_bigendian: bool) -> np.ndarray:
    """The (H, W) or (H, W, C) pixel array of Image fields, row padding removed, native byte order."""
    h, w, step = int(height), int(width), int(step)
    if h == 0 or w == 0:
        raise BadImageError(f"empty image ({w}x{h})")
    if encoding not in ENCODINGS:
        raise BadImageError(f"unsupported encoding {encoding!r}")
    dtype, nchan, _ = ENCODINGS[encoding]
    dtype = np.dtype(dtype)
    row = w * nchan * dtype.itemsize
    buf = _bytes(data)
    if step < row:
        raise BadImageError(f"step {step} < width {w} x {nchan * dtype.itemsize} bytes per pixel ({encoding})")
    if buf.size != step * h:
        raise BadImageError(f"data has {buf.size} bytes, expected step {step} x height {h} = {step * h}")
    img = buf.reshape(h, step)[:, :row].view(dtype.newbyteorder(">" if is_bigendian else "<"))
    img = img.reshape(h, w, nchan).astype(dtype.newbyteorder("="), copy=False)
    return np.ascontiguousarray(img[:, :, 0] if nchan == 1 else img)


def decode_raw(encoding: str, height: int, width: int, step: int, data, is_bigendian: bool = False) -> np.ndarray:
    """sensor_msgs/Image fields -> (H, W, 3) uint8 RGB. Raises BadImageError."""
    img = _pixels(encoding, height, width, step, data, is_bigendian)
    code = ENCODINGS[encoding][2]
    if code is not None:
        img = cv2.cvtColor(img, code)
    if img.dtype == np.uint16:
        img = cv2.convertScaleAbs(img, alpha=255.0 / 65535.0)
    return img


def decode_compressed(fmt: str, data) -> np.ndarray:
    """sensor_msgs/CompressedImage fields (any format OpenCV reads: jpeg, png, ...) -> (H, W, 3) uint8 RGB."""
    buf = _bytes(data)
    if buf.size == 0:
        raise BadImageError("empty CompressedImage")
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # 8-bit BGR whatever the stored channels
    if img is None:
        raise BadImageError(f"cannot decode CompressedImage (format {fmt!r})")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def to_rgb(msg) -> np.ndarray:
    """An Image or CompressedImage message (rclpy or rosbags) -> (H, W, 3) uint8 RGB."""
    if hasattr(msg, "format"):
        return decode_compressed(msg.format, msg.data)
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))



def to_mono8(msg) -> np.ndarray:
    """A mono8 Image (class IDs of ground truth or the node's labels; importance) -> (H, W) uint8."""
    if msg.encoding not in ("mono8", "8UC1"):
        raise BadImageError(f"expected a mono8 image, got {msg.encoding!r}")
    return _pixels(msg.encoding, msg.height, msg.width, msg.step, msg.data, False)
