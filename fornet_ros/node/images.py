"""Image messages -> RGB arrays (numpy + OpenCV; no ROS, no bag library).

Works on the raw fields of ``sensor_msgs/Image`` (encoding, height, width, step, is_bigendian,
data) and ``sensor_msgs/CompressedImage`` (format, data), so rclpy and rosbags messages decode
alike: :func:`to_rgb` takes either. Encodings are the ``sensor_msgs/image_encodings`` names
cv_bridge handles for colour images. :class:`DecodeOptions` makes the rest explicit:

* 16-bit images are scaled to 8 bits by their significant bits: fixed (``bit_depth``), or per
  frame the smallest of 10, 12, 14, 16 bits that holds the frame's maximum (12-bit sensor data
  in mono16 is not black; a dark true 16-bit frame is brightened, at most by 2^6);
* the generic 8UC3/8UC4/16UC3/16UC4 say nothing of channel order: rejected unless ``generic_order``
  says bgr or rgb (8UC1/16UC1 are grey either way);
* float and signed encodings (32FC3, 16SC1, ...: depth, flow, NaN) are not camera images: rejected;
* ``max_pixels`` rejects an image before it is decoded - for a CompressedImage from the size in its
  PNG or JPEG header (a 97 kB PNG can hold 10000 x 10000 pixels), and then other formats, whose
  size cannot be known before decoding, are rejected too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import FornetError


class BadImageError(FornetError):
    """An image message that cannot be turned into an RGB array (says why)."""


# encoding -> (dtype, channels, cv2 conversion to RGB or None when already RGB)
_BAYER = {"rggb": cv2.COLOR_BayerBG2RGB, "bggr": cv2.COLOR_BayerRG2RGB, "gbrg": cv2.COLOR_BayerGR2RGB,
          "grbg": cv2.COLOR_BayerGB2RGB}  # OpenCV names Bayer patterns by the 2nd row's 2nd/3rd pixel
ENCODINGS = {
    "rgb8": (np.uint8, 3, None), "bgr8": (np.uint8, 3, cv2.COLOR_BGR2RGB), "8UC3": (np.uint8, 3, cv2.COLOR_BGR2RGB),
    "rgba8": (np.uint8, 4, cv2.COLOR_RGBA2RGB), "bgra8": (np.uint8, 4, cv2.COLOR_BGRA2RGB),
    "8UC4": (np.uint8, 4, cv2.COLOR_BGRA2RGB), "16UC4": (np.uint16, 4, cv2.COLOR_BGRA2RGB),
    "mono8": (np.uint8, 1, cv2.COLOR_GRAY2RGB), "8UC1": (np.uint8, 1, cv2.COLOR_GRAY2RGB),
    "rgb16": (np.uint16, 3, None), "bgr16": (np.uint16, 3, cv2.COLOR_BGR2RGB),
    "16UC3": (np.uint16, 3, cv2.COLOR_BGR2RGB),
    "rgba16": (np.uint16, 4, cv2.COLOR_RGBA2RGB), "bgra16": (np.uint16, 4, cv2.COLOR_BGRA2RGB),
    "mono16": (np.uint16, 1, cv2.COLOR_GRAY2RGB), "16UC1": (np.uint16, 1, cv2.COLOR_GRAY2RGB),
    "yuv422": (np.uint8, 2, cv2.COLOR_YUV2RGB_UYVY), "uyvy": (np.uint8, 2, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": (np.uint8, 2, cv2.COLOR_YUV2RGB_YUY2), "yuyv": (np.uint8, 2, cv2.COLOR_YUV2RGB_YUY2),
    **{f"bayer_{p}{b}": (np.uint8 if b == 8 else np.uint16, 1, code) for p, code in _BAYER.items() for b in (8, 16)},
}


# no channel order in the name: read as BGR(A) or RGB(A) only when DecodeOptions.generic_order says so
GENERIC = {"8UC3": cv2.COLOR_RGB2BGR, "16UC3": cv2.COLOR_RGB2BGR, "8UC4": cv2.COLOR_RGBA2RGB,
           "16UC4": cv2.COLOR_RGBA2RGB}  # the conversion when they are RGB(A)
_NOT_CAMERA = re.compile(r"(8S|16S|32S|32F|64F)C\d+")
BIT_DEPTHS = (10, 12, 14, 16)  # per-frame choices for 16-bit data


@dataclass(frozen=True)
class DecodeOptions:
    """What the decoder may accept (the node's max_input_pixels, generic_color_order, input_bit_depth)."""

    max_pixels: int = 0  # 0 = no limit
    generic_order: str = "bgr"  # reject, bgr or rgb (cv_bridge reads 8UC3 as BGR)
    bit_depth: int = 0  # 16-bit data: 0 = per frame (BIT_DEPTHS), else the significant bits

    def check_size(self, width: int, height: int) -> None:
        if self.max_pixels and width * height > self.max_pixels:
            raise BadImageError(f"image too large: {width}x{height} = {width * height} pixels > max_input_pixels "
                                f"{self.max_pixels}")


def bit_depth_of(img: np.ndarray, fixed: int = 0) -> int:
    """The significant bits of 16-bit ``img``: ``fixed`` if set, else the smallest of BIT_DEPTHS
    holding its maximum."""
    if fixed:
        return fixed
    m = int(img.max()) if img.size else 0
    return next(b for b in BIT_DEPTHS if m < (1 << b))


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
        if _NOT_CAMERA.fullmatch(encoding):
            raise BadImageError(f"encoding {encoding!r} is not a camera image (float or signed data: depth, flow...)")
        raise BadImageError(f"unsupported encoding {encoding!r}")
    dtype, nchan, _ = ENCODINGS[encoding]
    if encoding in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv") and w % 2:
        raise BadImageError(f"{encoding} needs an even width (4:2:2 pairs pixels), got {w}")
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


DEPTH_ENCODINGS = {"16UC1": np.uint16, "mono16": np.uint16, "32FC1": np.float32}


def decode_depth(encoding: str, height: int, width: int, step: int, data, is_bigendian: bool = False) -> np.ndarray:
    """A depth image's raw values (H, W): uint16 millimetres (16UC1/mono16) or float32 metres (32FC1).
    Raises BadImageError for any other encoding or inconsistent fields."""
    if encoding not in DEPTH_ENCODINGS:
        raise BadImageError(f"depth encoding {encoding!r} not supported: use 16UC1 (mm) or 32FC1 (m)")
    dtype = np.dtype(DEPTH_ENCODINGS[encoding])
    h, w = int(height), int(width)
    if h <= 0 or w <= 0:
        raise BadImageError(f"empty depth image {w}x{h}")
    buf, row = _bytes(data), w * dtype.itemsize
    if step < row or buf.size != step * h:
        raise BadImageError(f"depth data has {buf.size} bytes for step {step} x height {h} (row {row} bytes)")
    img = buf.reshape(h, step)[:, :row].view(dtype.newbyteorder(">" if is_bigendian else "<"))
    return img.astype(dtype.newbyteorder("="), copy=False)


def decode_raw(encoding: str, height: int, width: int, step: int, data, is_bigendian: bool = False,
               options: DecodeOptions | None = None) -> np.ndarray:
    """sensor_msgs/Image fields -> (H, W, 3) uint8 RGB. Raises BadImageError."""
    opt = options or DecodeOptions()
    opt.check_size(int(width), int(height))
    code = ENCODINGS.get(encoding, (None, None, None))[2]
    if encoding in GENERIC:
        if opt.generic_order == "reject":
            raise BadImageError(f"encoding {encoding!r} has no channel order: publish rgb8/bgr8 (or set "
                                "generic_color_order to bgr or rgb)")
        if opt.generic_order == "rgb":
            code = None if GENERIC[encoding] == cv2.COLOR_RGB2BGR else GENERIC[encoding]
    img = _pixels(encoding, height, width, step, data, is_bigendian)
    bits = bit_depth_of(img, opt.bit_depth) if img.dtype == np.uint16 else 8
    if code is not None:
        img = cv2.cvtColor(img, code)
    if img.dtype == np.uint16:
        img = cv2.convertScaleAbs(img, alpha=255.0 / ((1 << bits) - 1))  # saturates above ``bits``
    return img


_PNG = b"\x89PNG\r\n\x1a\n"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # not C4/C8/CC


def compressed_size(data) -> tuple[str, int, int] | None:
    """(format, width, height) from a PNG's IHDR or a JPEG's SOFn header, without decoding; None when
    the data is neither (or the header is cut short). OpenCV has no header-only reader and Pillow
    is no dependency of the package: both headers are a few bytes."""
    buf = _bytes(data)
    head = buf[:24].tobytes()
    if head[:8] == _PNG and head[12:16] == b"IHDR" and len(head) >= 24:
        return "png", int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:2] != b"\xff\xd8":
        return None
    i, n = 2, buf.size
    while i + 4 <= n:  # walk the marker segments up to the frame header
        if buf[i] != 0xFF:
            return None
        marker = int(buf[i + 1])
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # stand-alone markers
            i += 2
            continue
        if marker == 0xDA or marker == 0xD9:  # scan or end before any frame header
            return None
        if marker in _SOF:
            if i + 9 > n:
                return None
            seg = buf[i + 5:i + 9].tobytes()
            return "jpeg", int.from_bytes(seg[2:4], "big"), int.from_bytes(seg[0:2], "big")
        i += 2 + (int(buf[i + 2]) << 8 | int(buf[i + 3]))
    return None


def decode_compressed(fmt: str, data, options: DecodeOptions | None = None) -> np.ndarray:
    """sensor_msgs/CompressedImage fields -> (H, W, 3) uint8 RGB. Any format OpenCV reads; with
    ``options.max_pixels`` only PNG and JPEG, whose size is checked before decoding."""
    opt = options or DecodeOptions()
    buf = _bytes(data)
    if buf.size == 0:
        raise BadImageError("empty CompressedImage")
    if opt.max_pixels:
        size = compressed_size(buf)
        if size is None:
            raise BadImageError(f"CompressedImage (format {fmt!r}) is not PNG or JPEG: its size cannot be checked "
                                "before decoding")
        opt.check_size(size[1], size[2])
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # 8-bit BGR whatever the stored channels
    if img is None:
        raise BadImageError(f"cannot decode CompressedImage (format {fmt!r})")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def to_rgb(msg, options: DecodeOptions | None = None) -> np.ndarray:
    """An Image or CompressedImage message (rclpy or rosbags) -> (H, W, 3) uint8 RGB."""
    if hasattr(msg, "format"):
        return decode_compressed(msg.format, msg.data, options)
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian), options)


def to_mono8(msg) -> np.ndarray:
    """A mono8 Image (class IDs of ground truth or the node's labels; importance) -> (H, W) uint8."""
    if msg.encoding not in ("mono8", "8UC1"):
        raise BadImageError(f"expected a mono8 image, got {msg.encoding!r}")
    return _pixels(msg.encoding, msg.height, msg.width, msg.step, msg.data, False)
