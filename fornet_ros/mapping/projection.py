"""Flat-ground projection of label images into per-class grid layers (numpy + opencv, no ROS).

Assumptions (see docs/costmap.md): the ground is the plane z = 0 of the robot base frame
(``base_link``, REP-103: x forward, y left, z up); the camera's mounting in that frame is known
(parameters, or TF at the image stamp on a ROS distro); ground classes lie on that plane, so their
pixels project along their rays; obstacle classes stand on it, so only their ground-contact pixel
(the lowest pixel of each vertical run of obstacle pixels in an image column) is projected -
projecting the rest of the object would smear it along the ray behind the object.

The pixel -> cell lookup depends only on (camera model, pose, grid, label size); it is built once
(:func:`build_lookup`) and a frame then costs a few gathers and scatters (:class:`GridFuser`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .camera import CameraModel, GeometryError, optical_in_grid
from .points import project


@dataclass(frozen=True)
class GridSpec:
    """An OccupancyGrid's geometry: ``width`` x ``height`` cells of ``resolution`` metres, cell (0, 0)'s
    corner at ``origin`` (x, y) in ``frame_id``; x runs along columns, y along rows."""

    resolution: float = 0.1
    width: int = 200
    height: int = 200
    origin: tuple[float, float] = (0.0, -10.0)
    frame_id: str = "base_link"

    def __post_init__(self):
        if not (self.resolution > 0 and self.width > 0 and self.height > 0):
            raise GeometryError(f"grid needs positive resolution and size, got {self}")

    def cell_of(self, x: np.ndarray, y: np.ndarray):
        ix = np.floor((x - self.origin[0]) / self.resolution).astype(np.int64)
        iy = np.floor((y - self.origin[1]) / self.resolution).astype(np.int64)
        inside = (ix >= 0) & (ix < self.width) & (iy >= 0) & (iy < self.height)
        return iy * self.width + ix, inside


@dataclass
class Lookup:
    """Precomputed for one (camera, pose, grid, label size).

    ``cell_map``/``xy_map`` cover every pixel (-1 where the ray misses the grid) and serve the
    obstacle contact pixels, which are few. Ground pixels are many and mostly redundant (near the
    camera hundreds of pixels fall in one cell), so ``ground_*`` keeps at most
    ``pixels_per_cell`` pixels of each cell, spread over the cell's pixels: a frame then gathers
    about that many pixels per visible cell instead of every pixel below the horizon."""

    shape: tuple[int, int]
    first_row: int  # no pixel above this row reaches the grid (the horizon or the range limit)
    cell_map: np.ndarray  # (H*W,) int32
    xy_map: np.ndarray  # (H*W, 2) float32 ground x, y in the base frame
    ground_pixels: np.ndarray  # (N,) int32 flat pixel indices
    ground_cells: np.ndarray  # (N,) int32 flat cell indices
    camera_xy: tuple[float, float] = (0.0, 0.0)  # the camera's ground point in the grid frame
    filled_cells: int = 0  # of ground_cells: far cells no pixel centre reached, given their covering pixel

    @property
    def valid_pixels(self) -> int:
        return int(np.count_nonzero(self.cell_map >= 0))

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.cell_map, self.xy_map, self.ground_pixels, self.ground_cells))

    def footprint_range(self, resolution: float) -> float | None:
        """The ground range (m from the camera) beyond which one label pixel spans more than one cell
        of ``resolution``: along the label image's centre column, the nearest pixel whose ground
        point lies more than a cell from its neighbour's below or beside it. None: no such pixel
        reaches the grid (every cell is hit by several pixel centres)."""
        h, w = self.shape
        c = w // 2
        xy = self.xy_map.reshape(h, w, 2).astype(np.float64)
        ok = self.cell_map.reshape(h, w) >= 0
        rows = np.flatnonzero(ok[:-1, c] & ok[1:, c])
        step = np.hypot(*(xy[rows, c] - xy[rows + 1, c]).T)
        if c + 1 < w:  # the lateral step too (wide-angle or anamorphic pixels)
            side = ok[rows, c + 1]
            step = np.where(side, np.maximum(step, np.hypot(*(xy[rows, c] - xy[rows, c + 1]).T)), step)
        far = rows[step > resolution]
        if not far.size:
            return None
        rng = np.hypot(xy[far, c, 0] - self.camera_xy[0], xy[far, c, 1] - self.camera_xy[1])
        return float(rng.min())


# Labels are projected at no more than this many pixels (nearest-neighbour downsampled): a 400 x 400
# grid of 0.1 m cells needs far fewer rays than a 24-megapixel image has, and the lookup (about 40
# bytes per pixel, plus ~100 bytes per pixel while it is built) stays below ~100 MB and ~0.5 s.
PROJECTION_MAX_PIXELS = 1 << 20


def projection_shape(label_shape: tuple[int, int], max_pixels: int = PROJECTION_MAX_PIXELS) -> tuple[int, int]:
    """The (h, w) at which labels of ``label_shape`` are projected: the same aspect, <= ``max_pixels``."""
    h, w = int(label_shape[0]), int(label_shape[1])
    if h * w <= max_pixels:
        return h, w
    s = math.sqrt(max_pixels / (h * w))
    return max(1, int(h * s)), max(1, int(w * s))


def downsample_labels(labels: np.ndarray, max_pixels: int = PROJECTION_MAX_PIXELS) -> np.ndarray:
    """``labels`` nearest-neighbour resized to :func:`projection_shape` (unchanged when small enough)."""
    h, w = projection_shape(labels.shape, max_pixels)
    if (h, w) == labels.shape:
        return labels
    return cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)


class LookupCache:
    """Lookups by key, least recently used evicted first, bounded by bytes (``max_bytes``) and count.
    A build that raised is remembered too (and raised again), so a bad camera model costs one
    failed build, not one per frame."""

    def __init__(self, max_bytes: int = 256 << 20, max_entries: int = 64):
        from collections import OrderedDict
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self._items: OrderedDict = OrderedDict()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key, build):
        """The lookup under ``key``; ``build()`` makes it when missing (its exception is cached)."""
        if key in self._items:
            self._items.move_to_end(key)
            value = self._items[key]
        else:
            try:
                value = build()
            except Exception as e:  # noqa: BLE001 - cached and re-raised below
                value = e
            self._items[key] = value
            self.nbytes += getattr(value, "nbytes", 0)
            while len(self._items) > 1 and (self.nbytes > self.max_bytes or len(self._items) > self.max_entries):
                _, old = self._items.popitem(last=False)
                self.nbytes -= getattr(old, "nbytes", 0)
        if isinstance(value, Exception):
            raise value
        return value


def build_lookup(camera: CameraModel, pose, grid: GridSpec, label_shape: tuple[int, int],
                 max_range: float = 30.0, pixels_per_cell: int = 4) -> Lookup:
    """Ray-cast every label pixel onto z = 0. ``pose``: a :class:`Pose` of the camera body, or
    (R, t) of the optical frame in the base frame (from TF). Labels may be smaller than the
    camera image (scaled)."""
    R, cam_t = optical_in_grid(pose)
    h, w = label_shape
    bx, by = max(1, camera.binning_x), max(1, camera.binning_y)
    img_w, img_h = (camera.roi[3], camera.roi[2]) if camera.roi[3] > 0 else (camera.width, camera.height)
    sx, sy = img_w / bx / w, img_h / by / h
    vv, uu = np.mgrid[0:h, 0:w]
    u = (uu.ravel() + 0.5) * sx - 0.5
    v = (vv.ravel() + 0.5) * sy - 0.5
    rays = camera.normalized_rays(u, v) @ np.asarray(R).T
    rz = rays[:, 2]
    down = rz < -1e-9
    cz = float(cam_t[2])
    t = np.where(down, -cz / np.where(down, rz, -1.0), 0.0)
    gx, gy = cam_t[0] + t * rays[:, 0], cam_t[1] + t * rays[:, 1]
    rng = np.hypot(gx - cam_t[0], gy - cam_t[1])
    ok = down & (cz > 0) & (rng <= max_range)
    cells, inside = grid.cell_of(gx, gy)
    ok &= inside
    cell_map = np.where(ok, cells, -1).astype(np.int32)
    pix = np.flatnonzero(ok)
    first_row = int(pix.min() // w) if pix.size else h
    # keep <= pixels_per_cell pixels per cell, evenly spread over the cell's pixels
    order = pix[np.argsort(cell_map[pix], kind="stable")]
    c = cell_map[order]
    starts = np.r_[0, np.flatnonzero(np.diff(c)) + 1] if c.size else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, c.size])
    rank = np.arange(c.size) - np.repeat(starts, counts)
    step = np.repeat(np.maximum(1, -(-counts // max(1, pixels_per_cell))), counts)
    keep = order[rank % step == 0]
    keep.sort()
    fill_pixels, fill_cells = _covering_pixels(camera, R, cam_t, grid, (h, w), (sx, sy), max_range, cell_map)
    return Lookup(shape=(h, w), first_row=first_row, cell_map=cell_map,
                  xy_map=np.stack([gx, gy], 1).astype(np.float32),
                  ground_pixels=np.r_[keep, fill_pixels].astype(np.int32),
                  ground_cells=np.r_[cell_map[keep], fill_cells].astype(np.int32),
                  camera_xy=(float(cam_t[0]), float(cam_t[1])), filled_cells=int(fill_cells.size))


def _covering_pixels(camera: CameraModel, R, cam_t, grid: GridSpec, label_shape, scale, max_range: float,
                     cell_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pixels, cells) for the cells that no label pixel's centre lands in.

    Far from the camera one label pixel's footprint on the ground spans several cells (with 360
    rows and 0.1 m cells, beyond ~8 m), so ray-casting pixel centres alone leaves some cells of a
    seen road unknown between cells that were hit: striped far-field rows. Rule, at the label
    image's own resolution: such a cell takes the label of the pixel that covers the cell's
    centre (the centre projected through the camera model, distortion included), provided that
    pixel's own ray reaches the grid (below the horizon, within ``max_range``); cells whose centre
    falls outside the image, behind the camera or beyond ``max_range`` stay unknown. A cell so
    filled repeats its pixel's label - no information is invented below the image's resolution,
    and :meth:`Lookup.footprint_range` says from which range on this happens."""
    hit = np.zeros(grid.width * grid.height, bool)
    hit[cell_map[cell_map >= 0]] = True
    cells = np.flatnonzero(~hit)
    iy, ix = np.divmod(cells, grid.width)
    x = grid.origin[0] + (ix + 0.5) * grid.resolution
    y = grid.origin[1] + (iy + 0.5) * grid.resolution
    near = np.hypot(x - cam_t[0], y - cam_t[1]) <= max_range
    cells, x, y = cells[near], x[near], y[near]
    pts = np.stack([x - cam_t[0], y - cam_t[1], np.full_like(x, -float(cam_t[2]))], 1) @ np.asarray(R)  # R^T p
    uv, inside = project(pts, camera)
    h, w = label_shape
    lu = np.floor((uv[inside, 0] + 0.5) / scale[0]).astype(np.int64).clip(0, w - 1)
    lv = np.floor((uv[inside, 1] + 0.5) / scale[1]).astype(np.int64).clip(0, h - 1)
    pix = lv * w + lu
    ok = cell_map[pix] >= 0
    return pix[ok], cells[inside][ok]
