"""Labelled 3D points (issue #14): the segmentation fused with depth images or LiDAR sweeps.

Pure numpy/OpenCV on :mod:`fornet_ros.mapping`'s camera model and poses; the node only converts
messages. Flat-ground projection (the costmap) is right for the road surface but smears obstacles
along the viewing ray; measured depth puts every labelled pixel where it is.

- :func:`depth_points`: a depth image registered to the colour camera (16UC1 millimetres or 32FC1
  metres) -> organised, pixel-aligned 3D points in the optical frame (NaN where depth is invalid:
  0, NaN/inf, outside [min_range, max_range]; counted).
- :func:`register_depth`: a depth camera's points reprojected into the colour camera (when the
  driver does not register depth itself: both calibrations and the depth->colour extrinsic given).
- :func:`lidar_labels`: LiDAR points + the LiDAR->optical transform -> the label and confidence of
  the mask pixel each point projects to (distortion included); points behind the camera, outside
  the image, or hidden from the camera behind a nearer point (the LiDAR sits elsewhere and sees
  past edges the camera cannot: a small z-buffer over 4x4-pixel blocks) are dropped (counted).
- :func:`obstacle_points`: depth points of obstacle classes, in the grid frame, for the costmap
  (they replace the flat-ground contacts of that camera when depth is on).
- :class:`StampMatcher`: approximate-time pairing within a max slop. Motion between the two stamps
  is NOT compensated: at 10 m/s a 50 ms slop is 0.5 m.
- :func:`cloud_array`: the x, y, z, label, confidence record layout of the published PointCloud2.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..errors import FornetError
from .camera import CameraModel, Pose, optical_in_grid

CLOUD_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("label", "<u4"), ("confidence", "<f4")])


class PointsError(FornetError):
    """A depth image or point set that cannot be used (wrong encoding, size, shape)."""


@lru_cache(maxsize=8)
def _pixel_rays(camera: CameraModel) -> np.ndarray:
    """(H, W, 3) undistorted rays (z = 1) of every pixel, computed once per camera model."""
    v, u = np.mgrid[0:camera.height, 0:camera.width]
    return camera.normalized_rays(u.ravel(), v.ravel()).reshape(camera.height, camera.width, 3).astype(np.float32)


@dataclass
class DepthStats:
    pixels: int = 0
    valid: int = 0
    zero: int = 0
    not_finite: int = 0
    out_of_range: int = 0


def depth_points(depth: np.ndarray, camera: CameraModel, encoding: str, min_range: float = 0.1,
                 max_range: float = 50.0) -> tuple[np.ndarray, DepthStats]:
    """Depth image (same size as the camera) -> (H, W, 3) float32 points in the optical frame
    (x right, y down, z forward; NaN where invalid) and counts of what was dropped and why."""
    if depth.shape != (camera.height, camera.width):
        raise PointsError(f"depth {depth.shape} does not match the camera {camera.height}x{camera.width}")
    if encoding in ("16UC1", "mono16"):
        z = depth.astype(np.float32) * 0.001
    elif encoding == "32FC1":
        z = depth.astype(np.float32, copy=False)
    else:
        raise PointsError(f"depth encoding {encoding!r} not supported: use 16UC1 (mm) or 32FC1 (m)")
    finite = np.isfinite(z)
    zero = finite & (z == 0)
    in_range = finite & (z >= min_range) & (z <= max_range)
    stats = DepthStats(pixels=z.size, valid=int(in_range.sum()), zero=int(zero.sum()),
                       not_finite=int((~finite).sum()))
    stats.out_of_range = stats.pixels - stats.valid - stats.zero - stats.not_finite
    pts = _pixel_rays(camera) * np.where(in_range, z, np.nan)[..., None]
    return pts, stats


def register_depth(depth_points_optical: np.ndarray, color: CameraModel, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Depth registration: the points of a depth camera (its :func:`depth_points`, (h, w, 3) in its
    optical frame, NaN where invalid) -> a 32FC1 depth image in the geometry of the ``color``
    camera (distortion included), 0 where no point lands. ``(R, t)`` maps depth-optical points into
    the colour optical frame. Where several points land on one pixel the nearest wins (a z-buffer:
    ``np.minimum.at``); pixels no point lands on stay 0 (counted invalid downstream) - a depth
    camera of lower resolution than the colour one leaves such holes."""
    p = depth_points_optical.reshape(-1, 3)
    p = p[np.isfinite(p[:, 2])] @ np.asarray(R, np.float64).T + np.asarray(t, np.float64)
    uv, inside = project(p, color)
    h, w = color.image_size
    ui = np.floor(uv[inside, 0] + 0.5).astype(np.int64)
    vi = np.floor(uv[inside, 1] + 0.5).astype(np.int64)
    z = np.full(h * w, np.inf)
    np.minimum.at(z, vi * w + ui, p[inside, 2])
    return np.where(np.isfinite(z), z, 0.0).astype(np.float32).reshape(h, w)


def to_base(points_optical: np.ndarray, pose) -> np.ndarray:
    """Optical-frame points (..., 3) of a camera at ``pose`` (a :class:`Pose`, or (R, t) from TF)
    -> the base (grid) frame."""
    R, t = optical_in_grid(pose)
    return (points_optical @ np.asarray(R, np.float32).T + np.asarray(t, np.float32)).astype(np.float32)


def obstacle_points(points_optical: np.ndarray, labels: np.ndarray, pose, obstacle_lut: np.ndarray,
                    height: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The depth-measured obstacles of one frame for the costmap: (xy (N, 2) float32 in the grid
    frame, class IDs (N,) uint8, measured columns (W,) bool). The points are the pixels whose
    class is an obstacle (``obstacle_lut``) and whose 3D point lies ``height[0]`` <= z <=
    ``height[1]`` above the ground: they stand where the depth puts them, where the flat-ground
    contact of the same object may lie metres off along the ray (an object's lowest visible pixel
    is not always on the ground: occluded, or overhanging). A column is *measured* when one of its
    obstacle pixels has valid depth; the costmap keeps the flat-ground contacts of the others
    (depth holes, objects beyond the sensor's range), so no obstacle vanishes for lack of depth."""
    obstacle = obstacle_lut[labels]
    sel = obstacle & np.isfinite(points_optical[..., 2])
    p = to_base(points_optical[sel], pose)
    band = (p[:, 2] >= height[0]) & (p[:, 2] <= height[1])
    return np.ascontiguousarray(p[band, :2]), labels[sel][band].astype(np.uint8), sel.any(0)


def lidar_to_optical(camera_pose: Pose, lidar_pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) mapping LiDAR-frame points (x forward, y left, z up) into the camera's optical frame,
    both poses given in the same base frame (the node's camera_pose.<cam> and lidar_pose)."""
    Rc, tc = camera_pose.optical_in_base()
    Rl, tl = lidar_pose.transform()
    return Rc.T @ Rl, Rc.T @ (tl - tc)


@lru_cache(maxsize=8)
def _view_bounds(camera: CameraModel) -> tuple[float, float, float, float]:
    """Normalised-coordinate box of the image (undistorted border, 5 % margin): points outside it
    are dropped before projecting, because polynomial distortion folds far-off points back in."""
    w, h = camera.width, camera.height
    u = np.r_[np.linspace(0, w - 1, 32), np.full(32, w - 1), np.linspace(0, w - 1, 32), np.zeros(32)]
    v = np.r_[np.zeros(32), np.linspace(0, h - 1, 32), np.full(32, h - 1), np.linspace(0, h - 1, 32)]
    r = camera.normalized_rays(u, v)
    (x0, y0), (x1, y1) = r[:, :2].min(0), r[:, :2].max(0)
    mx, my = 0.05 * (x1 - x0), 0.05 * (y1 - y0)
    return x0 - mx, x1 + mx, y0 - my, y1 + my


def distort(xn: np.ndarray, yn: np.ndarray, camera: CameraModel) -> np.ndarray:
    """Normalised image coordinates -> (N, 2) pixels of the full-resolution image, with the
    camera's distortion: OpenCV's models as ROS names them - plumb_bob / rational_polynomial
    (k1, k2, p1, p2, k3[, k4, k5, k6]) and equidistant (cv2.fisheye: k1..k4).

    Written out in numpy rather than calling cv2.projectPoints / cv2.fisheye.projectPoints:
    those cost ~80 ms for the 300k points of one 640x480 depth frame here (measured), these
    closed forms a few ms; ``test_points.py`` checks them against OpenCV for every model."""
    K = camera.K
    d = np.zeros(8)
    d[:len(camera.d)] = camera.d
    if camera.distortion_model == "equidistant" and len(camera.d):
        r = np.hypot(xn, yn)
        th = np.arctan(r)
        th2 = th * th
        thd = th * (1 + th2 * (d[0] + th2 * (d[1] + th2 * (d[2] + th2 * d[3]))))
        scale = np.where(r > 1e-12, thd / np.where(r > 1e-12, r, 1.0), 1.0)
        x, y = xn * scale, yn * scale
    else:
        k1, k2, p1, p2, k3, k4, k5, k6 = d
        r2 = xn * xn + yn * yn
        radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
        xy = xn * yn
        x = xn * radial + 2 * p1 * xy + p2 * (r2 + 2 * xn * xn)
        y = yn * radial + p1 * (r2 + 2 * yn * yn) + 2 * p2 * xy
    return np.stack([K[0, 0] * x + K[0, 2], K[1, 1] * y + K[1, 2]], -1)  # no skew: OpenCV ignores K[0, 1] too


def project(points_optical: np.ndarray, camera: CameraModel) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) optical-frame points -> (N, 2) pixel coordinates of the (binned, ROI) image and a
    mask of the points in front of the camera whose pixel lies inside the image."""
    p = np.asarray(points_optical, np.float64).reshape(-1, 3)
    front = p[:, 2] > 1e-3
    uv = np.full((p.shape[0], 2), np.nan)
    if front.any():
        q = p[front]
        xn, yn = q[:, 0] / q[:, 2], q[:, 1] / q[:, 2]
        x0, x1, y0, y1 = _view_bounds(camera)
        ok = (xn >= x0) & (xn <= x1) & (yn >= y0) & (yn <= y1)
        sub = np.full((q.shape[0], 2), np.nan)
        sub[ok] = distort(xn[ok], yn[ok], camera)
        uv[front] = sub
    bx, by = max(1, camera.binning_x), max(1, camera.binning_y)
    uv = (uv - np.array(camera.roi[:2], np.float64)) / np.array([bx, by], np.float64)
    h, w = camera.image_size
    inside = np.isfinite(uv).all(1) & (uv[:, 0] >= -0.5) & (uv[:, 0] < w - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] < h - 0.5)
    return uv, inside


@dataclass
class LidarStats:
    points: int = 0
    labelled: int = 0
    behind: int = 0
    outside_image: int = 0
    occluded: int = 0


def _occluded(ui, vi, z, inside, width: int, block: int = 4, rel: float = 0.05, abs_m: float = 0.3):
    """Points farther than the nearest point of their pixel block by more than max(abs_m, rel*z)."""
    key = (vi // block) * (width // block + 1) + ui // block
    idx = np.flatnonzero(inside)
    if idx.size == 0:
        return np.zeros_like(inside)
    k = key[idx]
    order = np.argsort(k, kind="stable")  # group by block, then the minimum of each group (np.minimum.at is slow)
    ks = k[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    group_min = np.minimum.reduceat(z[idx][order], starts)
    near = np.empty(idx.size)
    near[order] = np.repeat(group_min, np.diff(np.r_[starts, ks.size]))
    out = np.zeros_like(inside)
    out[idx] = z[idx] > near + np.maximum(abs_m, rel * near)
    return out


def lidar_labels(points_lidar: np.ndarray, R: np.ndarray, t: np.ndarray, camera: CameraModel,
                 labels: np.ndarray, confidence: np.ndarray | None = None):
    """Label LiDAR points by the mask pixel they project to. Returns (keep mask (N,), labels (N,)
    uint8 with 255 where dropped, confidence (N,) float32, stats)."""
    pts = np.asarray(points_lidar, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise PointsError(f"LiDAR points must be (N, 3), got {pts.shape}")
    finite = np.isfinite(pts).all(1)
    p_opt = np.where(finite[:, None], pts, 0.0) @ np.asarray(R).T + np.asarray(t)
    uv, inside = project(p_opt, camera)
    inside &= finite
    h, w = labels.shape[:2]
    uv = np.where(inside[:, None], uv, 0.0)
    ui = np.clip(np.floor(uv[:, 0] + 0.5), 0, w - 1).astype(np.int64)
    vi = np.clip(np.floor(uv[:, 1] + 0.5), 0, h - 1).astype(np.int64)
    hidden = _occluded(ui, vi, p_opt[:, 2], inside, w)
    inside &= ~hidden
    lab = np.where(inside, labels[vi, ui], 255).astype(np.uint8)
    conf = np.where(inside, confidence[vi, ui] if confidence is not None else 1.0, 0.0).astype(np.float32)
    behind = finite & (p_opt[:, 2] <= 1e-3)
    stats = LidarStats(points=len(pts), labelled=int(inside.sum()), behind=int(behind.sum()),
                       occluded=int(hidden.sum()))
    stats.outside_image = stats.points - stats.labelled - stats.behind - stats.occluded
    return inside, lab, conf, stats


def cloud_array(points: np.ndarray, labels: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Records (x, y, z float32, label uint32, confidence float32), 20 bytes each, in the input's
    shape (an (H, W) organised cloud stays (H, W): pixel-aligned with the mask)."""
    out = np.empty(labels.shape, CLOUD_DTYPE)
    out["x"], out["y"], out["z"] = points[..., 0], points[..., 1], points[..., 2]
    out["label"], out["confidence"] = labels, confidence
    return out


@dataclass
class StampMatcher:
    """Pairs each colour frame with the buffered depth/LiDAR message nearest in stamp, if within
    ``slop_ns``; never blocks the colour path (no match -> counted, the frame goes on without)."""

    slop_ns: int
    keep: int = 10
    matched: int = 0
    unmatched: int = 0
    _buf: deque = field(default_factory=deque, repr=False)

    def add(self, stamp_ns: int, item) -> None:
        self._buf.append((int(stamp_ns), item))
        while len(self._buf) > self.keep:
            self._buf.popleft()

    def match(self, stamp_ns: int):
        best = min(self._buf, key=lambda e: abs(e[0] - stamp_ns), default=None)
        if best is None or abs(best[0] - stamp_ns) > self.slop_ns:
            self.unmatched += 1
            return None
        self.matched += 1
        return best[1]
