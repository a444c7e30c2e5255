"""The camera: a pinhole model with distortion (from CameraInfo) and its mounting pose on the robot
(numpy + opencv, no ROS). The frames follow REP-103: the body frame x forward, y left, z up; the optical
frame z forward, x right, y down."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import FornetError


class GeometryError(FornetError):
    """Invalid camera model, pose or grid (says which field and why)."""


# distortion model -> accepted lengths of D (sensor_msgs/distortion_models.hpp; empty D = no distortion)
D_LENGTHS = {"plumb_bob": (0, 5), "rational_polynomial": (0, 8), "equidistant": (0, 4), "": (0, 5)}


@dataclass(frozen=True)
class CameraModel:
    """Pinhole camera from a sensor_msgs/CameraInfo's fields (K row-major, D, size, binning, ROI)."""

    width: int
    height: int
    k: tuple[float, ...]
    d: tuple[float, ...] = ()
    distortion_model: str = "plumb_bob"
    binning_x: int = 0
    binning_y: int = 0
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)  # x_offset, y_offset, height, width (0 = full)

    def __post_init__(self):
        k = np.asarray(self.k, np.float64)
        if self.width <= 0 or self.height <= 0:
            raise GeometryError(f"camera size must be positive, got {self.width}x{self.height}")
        if k.shape != (9,) or not np.isfinite(k).all():
            raise GeometryError(f"K must hold 9 finite numbers, got {list(self.k)}")
        if k[0] <= 0 or k[4] <= 0:
            raise GeometryError(f"K has non-positive focal length (fx={k[0]}, fy={k[4]})")
        if not np.isfinite(np.asarray(self.d, np.float64)).all():
            raise GeometryError(f"D must be finite, got {list(self.d)}")
        if self.distortion_model not in D_LENGTHS:
            raise GeometryError(f"unsupported distortion model {self.distortion_model!r}")
        if len(self.d) not in D_LENGTHS[self.distortion_model]:
            # OpenCV would raise inside the costmap update (or read past D) on any other length
            raise GeometryError(f"D of {self.distortion_model or 'plumb_bob'} must hold "
                                f"{' or '.join(map(str, D_LENGTHS[self.distortion_model]))} coefficients, "
                                f"got {len(self.d)}")

    @property
    def K(self) -> np.ndarray:
        return np.asarray(self.k, np.float64).reshape(3, 3)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the published image: the ROI (or the full sensor), binned."""
        bx, by = max(1, self.binning_x), max(1, self.binning_y)
        return ((self.roi[2] or self.height) // by, (self.roi[3] or self.width) // bx)

    def normalized_rays(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Pixel coordinates of the (binned, ROI) image -> (N, 3) rays in the optical frame
        (z forward, x right, y down), distortion removed."""
        bx, by = max(1, self.binning_x), max(1, self.binning_y)
        xo, yo = self.roi[0], self.roi[1]
        pts = np.stack([u * bx + xo, v * by + yo], -1).astype(np.float64).reshape(-1, 1, 2)
        d = np.asarray(self.d, np.float64)
        if self.distortion_model == "equidistant" and d.size:
            norm = cv2.fisheye.undistortPoints(pts, self.K, d[:4].reshape(4, 1))
        elif d.size and np.any(d != 0):
            crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-9)
            undistort = getattr(cv2, "undistortPointsIter", None)  # OpenCV 4 name; OpenCV 5 merged it
            norm = (undistort(pts, self.K, d, None, None, crit) if undistort
                    else cv2.undistortPoints(pts, self.K, d, None, None, None, crit))
        else:
            K = self.K
            norm = np.stack([(pts[..., 0] - K[0, 2]) / K[0, 0], (pts[..., 1] - K[1, 2]) / K[1, 1]], -1)
        norm = norm.reshape(-1, 2)
        return np.concatenate([norm, np.ones((norm.shape[0], 1))], 1)


@dataclass(frozen=True)
class Pose:
    """Camera body pose in the base frame (metres, radians; roll/pitch/yaw as in REP-103, the body
    frame x forward, y left, z up - the optical frame is derived from it)."""

    x: float = 0.0
    y: float = 0.0
    z: float = 1.5
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0

    def __post_init__(self):
        if not all(math.isfinite(v) for v in (self.x, self.y, self.z, self.roll, self.pitch, self.yaw)):
            raise GeometryError(f"pose must be finite, got {self}")

    @classmethod
    def from_list(cls, values) -> "Pose":
        """[x, y, z, roll, pitch, yaw] (the node's camera_pose.<cam> parameter)."""
        try:
            if len(values) != 6:
                raise ValueError
            return cls(*map(float, values))
        except (TypeError, ValueError) as e:
            if isinstance(e, GeometryError):
                raise
            raise GeometryError(f"pose needs 6 numbers [x, y, z, roll, pitch, yaw], got {values!r}") from None

    def rotation(self) -> np.ndarray:
        cr, sr, cp, sp, cy, sy = (math.cos(self.roll), math.sin(self.roll), math.cos(self.pitch),
                                  math.sin(self.pitch), math.cos(self.yaw), math.sin(self.yaw))
        rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
        ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
        rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
        return rz @ ry @ rx

    def transform(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, t) of this frame in its parent: p_parent = R p + t."""
        return self.rotation(), np.array([self.x, self.y, self.z])

    def optical_in_base(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, t): the optical frame (z forward, x right, y down) expressed in the base frame."""
        R, t = self.transform()
        return R @ R_BODY_OPTICAL, t


def optical_in_grid(pose) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of a camera's optical frame in the grid frame, from a :class:`Pose` (parameters) or
    an (R, t) already in that form (TF)."""
    return pose.optical_in_base() if isinstance(pose, Pose) else pose


def transform_from_quaternion(translation, quaternion_xyzw) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) from a TF translation and quaternion (x, y, z, w) - for poses read from TF."""
    x, y, z, w = (float(v) for v in quaternion_xyzw)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-9:
        raise GeometryError(f"invalid quaternion {quaternion_xyzw}")
    x, y, z, w = x / n, y / n, z / n, w / n
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    return R, np.asarray(translation, np.float64)


# optical (z fwd, x right, y down) -> body (x fwd, y left, z up)
R_BODY_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
