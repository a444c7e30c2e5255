"""Decode rosbags Image / CompressedImage messages to RGB without rclpy (rosbags-image)."""

from __future__ import annotations

import numpy as np


def decode_image(msg) -> np.ndarray:
    from rosbags.image import message_to_cvimage
    if hasattr(msg, "format"):
        import cv2
        bgr = message_to_cvimage(msg)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if msg.step * msg.height != len(msg.data):
        raise ValueError(f"data has {len(msg.data)} bytes, expected step {msg.step} x height {msg.height}")
    return np.ascontiguousarray(message_to_cvimage(msg, "rgb8"))
