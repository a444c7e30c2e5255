"""The real driving clip shipped with the package: 30 labelled frames of CamVid drive 0006R0.

The packaged model was trained without drive 0006R0, so the clip is held-out real footage. It is a
rosbag2 (MCAP, zstd chunks) in ``fornet_ros/data/clips/camvid_0006R0/`` holding, per frame,
``/camera/image_raw/compressed`` (JPEG), ``/camera/camera_info`` (the estimated pinhole model below)
and ``/camera/ground_truth/labels`` (mono8 Cityscapes train IDs, 255 = void). Built by
``scripts/make_demo_clip.py``; licence and attribution in the clip's NOTICE.md (CC BY-NC 4.0).

CamVid publishes no calibration for this copy; the numbers below are estimates from the footage
(docs/calibration_camvid.md: method and uncertainties). No ROS needed to import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

CLIP_NAME = "camvid_0006R0"
CAMERA = "camera"  # topics /camera/image_raw/compressed, /camera/camera_info, /camera/ground_truth/labels

# Pinhole model of the 480x360 frames (docs/calibration_camvid.md). The frames are the anamorphic
# 960x720 DVCPRO HD raster of a 16:9 picture, halved: pixels are 4/3 wider than tall, so fx = 0.75 fy.
WIDTH, HEIGHT = 480, 360
FX, FY = 420.0, 560.0  # px; fy +-30 (widest zoom of the HVX200, 35 mm equivalent 32.5 mm in 16:9)
CX, CY = 239.5, 179.5  # px; the image centre (no evidence of an offset; horizon row 176.7 +- 7.5)
K = (FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0)

# Camera body pose in base_link (x forward, y left, z up; m, rad), as the node's camera_pose.<cam>
# parameter [x, y, z, roll, pitch, yaw]. base_link is the ground point under the camera, so grid
# distances are distances from the camera. Height 1.2 +- 0.15 m, pitch +0.005 +- 0.013 rad (nose down).
DEMO_CAMERA_POSE = (0.0, 0.0, 1.2, 0.0, 0.005, 0.0)

# The CamVid frames in the clip: every 3rd annotated frame of 0006R0 from f00960 to f03570 (30 frames,
# 3 s apart; CamVid labels 1 frame per second of 30 fps video, numbered by video frame).
FIRST_FRAME, LAST_FRAME, FRAME_STEP, VIDEO_FPS = 960, 3570, 90, 30.0
FRAME_NUMBERS = tuple(range(FIRST_FRAME, LAST_FRAME + 1, FRAME_STEP))


# The clip's ground truth is CamVid's 11 classes written as their one-to-one train IDs: scores map
# predictions into them first (fornet_ros.classes.CAMVID: a truck on a CamVid car is right).
LABEL_SPACE = "camvid"


def frame_stamp_offset_ns(frame_number: int) -> int:
    """Stamp of a CamVid video frame relative to the clip's first frame (frame number / 30 fps)."""
    return int(round((frame_number - FIRST_FRAME) * 1e9 / VIDEO_FPS))


def demo_clip_path() -> Path:
    """The rosbag2 folder of the clip inside the installed package."""
    return Path(str(resources.files("fornet_ros") / "data" / "clips" / CLIP_NAME / "bag"))


def camera_info() -> dict:
    """The CameraInfo fields written into the clip (see :func:`fornet_ros.tools.bags.pinhole_info`)."""
    from .bags import pinhole_info
    return pinhole_info(WIDTH, HEIGHT, FX, FY, CX, CY)


def camera_model(info: dict | None = None):
    """:class:`fornet_ros.mapping.CameraModel` from CameraInfo fields (default: the clip's)."""
    from ..mapping import CameraModel
    info = info or camera_info()
    return CameraModel(int(info["width"]), int(info["height"]), tuple(float(v) for v in info["k"]),
                       tuple(float(v) for v in info["d"]), info.get("distortion_model", "plumb_bob"))


def camera_pose():
    """:data:`DEMO_CAMERA_POSE` as a :class:`fornet_ros.mapping.Pose`."""
    from ..mapping import Pose
    return Pose.from_list(DEMO_CAMERA_POSE)


@dataclass
class Clip:
    stamps: list[int]  # header stamps, ns
    images: list[np.ndarray]  # (H, W, 3) uint8 RGB, decoded from JPEG
    labels: list[np.ndarray | None]  # (H, W) uint8 train IDs, 255 = void
    camera_info: dict  # the first CameraInfo of the bag (fields as bags.read_camera_info)

    def __len__(self):
        return len(self.images)


def load_clip(path=None, limit: int | None = None) -> Clip:
    """Frames, ground truth and CameraInfo of the clip (or of any bag written the same way)."""
    from .bags import iter_frames, read_camera_info
    path = Path(path) if path is not None else demo_clip_path()
    stamps, images, labels = [], [], []
    for _, stamp, rgb, gt in iter_frames(path, CAMERA):
        stamps.append(stamp)
        images.append(rgb)
        labels.append(gt)
        if limit and len(images) >= limit:
            break
    return Clip(stamps, images, labels, read_camera_info(path, CAMERA))
