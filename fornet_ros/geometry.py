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
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import FornetError

UNKNOWN = -1

# The default layers (config/semantic_costmap.yaml holds the same, to copy and edit).
DEFAULT_LAYER_CONFIG = {
    "ground_classes": ["road", "sidewalk", "terrain"],
    "obstacle_classes": ["pole", "traffic light", "traffic sign", "person", "rider", "car", "truck", "bus",
                         "train", "motorcycle", "bicycle", "fence", "wall", "building", "vegetation"],
    "layers": [
        {"name": "road", "classes": ["road"], "cost": 0},
        {"name": "sidewalk", "classes": ["sidewalk", "terrain"], "cost": 50},
        {"name": "vehicles", "classes": ["car", "truck", "bus", "train", "motorcycle", "bicycle"], "cost": 100},
        {"name": "people", "classes": ["person", "rider"], "cost": 100},
        {"name": "static", "classes": ["pole", "traffic light", "traffic sign", "fence", "wall", "building",
                                       "vegetation"], "cost": 100},
    ],
}


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
    from .points import project  # points builds on this module; a module-level import would be circular
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


@dataclass(frozen=True)
class Layer:
    name: str
    class_ids: tuple[int, ...]
    cost: int

    def __post_init__(self):
        if not 0 <= self.cost <= 100:
            raise GeometryError(f"layer {self.name!r}: cost must be in 0..100, got {self.cost}")


@dataclass
class LayerConfig:
    """Which classes lie on the ground, which stand on it, and the layers to publish."""

    ground_ids: tuple[int, ...]
    obstacle_ids: tuple[int, ...]
    layers: tuple[Layer, ...]

    _lut: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        both = set(self.ground_ids) & set(self.obstacle_ids)
        if both:
            raise GeometryError(f"classes {sorted(both)} are both ground and obstacle")
        names = [l.name for l in self.layers]
        if len(set(names)) != len(names) or "combined" in names:
            raise GeometryError(f"layer names must be unique and not 'combined', got {names}")

    @classmethod
    def from_dict(cls, d: dict, class_names) -> "LayerConfig":
        """``{ground_classes: [...], obstacle_classes: [...], layers: [{name, classes, cost}]}``, by class name."""
        index = {n: i for i, n in enumerate(class_names)}

        def ids(names, where):
            unknown = [n for n in names if n not in index]
            if unknown:
                raise GeometryError(f"{where}: unknown classes {unknown}; known: {list(class_names)}")
            return tuple(index[n] for n in names)

        try:
            layers = tuple(Layer(str(l["name"]), ids(l["classes"], f"layer {l['name']!r}"), int(l["cost"]))
                           for l in d["layers"])
            return cls(ids(d.get("ground_classes", []), "ground_classes"),
                       ids(d.get("obstacle_classes", []), "obstacle_classes"), layers)
        except (KeyError, TypeError) as e:
            raise GeometryError(f"missing or malformed field {e}") from e

    def unnamed(self, class_names) -> list[str]:
        """The model's classes that no ground/obstacle list and no layer names: their pixels never
        reach the grids (the node reports them once at start-up)."""
        used = set(self.ground_ids) | set(self.obstacle_ids) | {i for l in self.layers for i in l.class_ids}
        return [n for i, n in enumerate(class_names) if i not in used]

    def lut(self, what: str) -> np.ndarray:
        if what not in self._lut:
            t = np.zeros(256, bool)
            if what == "ground":
                t[list(self.ground_ids)] = True
            elif what == "obstacle":
                t[list(self.obstacle_ids)] = True
            else:
                t[list(self.layers[int(what)].class_ids)] = True
            self._lut[what] = t
        return self._lut[what]


def read_layer_config(path: str | None = None) -> dict:
    """The layer config YAML at ``path`` as a dict (empty or None: :data:`DEFAULT_LAYER_CONFIG`)."""
    import yaml
    if not path:
        return DEFAULT_LAYER_CONFIG
    try:
        with open(path) as f:
            d = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise GeometryError(f"costmap layer config {path}: {e}") from e
    if not isinstance(d, dict) or not isinstance(d.get("layers"), list):
        raise GeometryError(f"costmap layer config {path}: expected a mapping with a 'layers' list")
    return d


def load_layer_config(path: str | None, class_names) -> LayerConfig:
    """:func:`read_layer_config` checked against a model's class names."""
    d = read_layer_config(path)
    try:
        return LayerConfig.from_dict(d, class_names)
    except GeometryError as e:
        raise GeometryError(f"costmap layer config {path or '(built-in)'}: {e}") from e


def contact_mask(labels: np.ndarray, obstacle_lut: np.ndarray, first_row: int = 0) -> np.ndarray:
    """True at the lowest pixel of every vertical run of obstacle pixels (per image column).
    Rows above ``first_row`` are not computed (False): no pixel there reaches the ground."""
    out = np.zeros(labels.shape, bool)
    if first_row >= labels.shape[0]:
        return out
    # cv2.LUT: a SIMD table lookup, ~3x faster than numpy fancy indexing on 1-2 Mpx
    obst = cv2.LUT(np.ascontiguousarray(labels[first_row:]), obstacle_lut.astype(np.uint8))
    out[first_row:-1] = obst[:-1] > obst[1:]  # obstacle here, not below
    out[-1] = obst[-1] > 0
    return out


class GridFuser:
    """Per-class layers for one output time: add each camera's labels, then read the grids.

    Per frame: one gather of the valid pixels' classes, one scatter of observed cells, one scatter
    per layer of its cells, then O(cells) combination - no re-projection."""

    def __init__(self, grid: GridSpec, config: LayerConfig):
        self.grid, self.cfg = grid, config
        self.n = grid.width * grid.height
        self.layers = np.full((len(config.layers), self.n), UNKNOWN, np.int8)
        self.hits = np.zeros((len(config.layers), self.n), bool)  # a pixel of the layer's classes landed
        self.observed = np.zeros(self.n, bool)  # a ground or contact pixel landed (any class)
        self.contact_points: list[np.ndarray] = []
        self.contact_labels: list[np.ndarray] = []
        self.ground_points: list[np.ndarray] = []

    def add(self, labels: np.ndarray, lookup: Lookup, obstacles=None):
        """One camera's labels. ``obstacles``: (xy (N, 2) in the grid frame, class IDs (N,),
        measured columns (W_depth,) bool) from :func:`fornet_ros.points.obstacle_points`; given,
        the depth points replace the flat-ground contacts in the measured image columns (one point
        per cell), and the other columns keep their contacts. Ground classes use the ground plane."""
        if labels.shape != lookup.shape:
            raise GeometryError(f"labels {labels.shape} do not match the lookup's {lookup.shape}")
        if lookup.first_row >= labels.shape[0] and obstacles is None:
            return
        gcls = labels.ravel()[lookup.ground_pixels]
        gsel = self.cfg.lut("ground")[gcls]
        contact = np.flatnonzero(contact_mask(labels, self.cfg.lut("obstacle"), lookup.first_row))
        if obstacles is not None:  # labels may be downsampled: map their columns onto the depth's
            measured = obstacles[2]
            col = (contact % labels.shape[1]) * len(measured) // labels.shape[1]
            contact = contact[~measured[col]]
        ccells = lookup.cell_map[contact]
        hit_grid = ccells >= 0
        contact, ccells = contact[hit_grid], ccells[hit_grid]
        cxy, ccls = lookup.xy_map[contact], labels.ravel()[contact]
        if obstacles is not None:
            dxy, dcls = obstacles[0], obstacles[1]
            dcells, inside = self.grid.cell_of(dxy[:, 0], dxy[:, 1])
            _, first = np.unique(dcells[inside], return_index=True)  # one point per cell (semantic_points size)
            keep = np.flatnonzero(inside)[first]
            cxy = np.concatenate([cxy, dxy[keep]])
            ccls = np.concatenate([ccls, dcls[keep]])
            ccells = np.concatenate([ccells, dcells[keep]])
        cells = np.concatenate([lookup.ground_cells[gsel], ccells])
        cls_used = np.concatenate([gcls[gsel], ccls])
        observed = np.zeros(self.n, bool)
        observed[cells] = True
        self.observed |= observed
        base = np.where(observed, 0, UNKNOWN).astype(np.int8)
        for i, layer in enumerate(self.cfg.layers):
            hit = np.zeros(self.n, bool)
            hit[cells[self.cfg.lut(str(i))[cls_used]]] = True
            self.hits[i] |= hit
            np.maximum(self.layers[i], np.where(hit, np.int8(layer.cost), base), out=self.layers[i])
        self.contact_points.append(cxy.astype(np.float32, copy=False))
        self.contact_labels.append(ccls.astype(np.uint8, copy=False))
        self.ground_points.append(lookup.xy_map[lookup.ground_pixels[gsel]])

    def grids(self) -> dict[str, np.ndarray]:
        """name -> (height, width) int8 in {-1, 0..100}; 'combined' is the per-cell max over layers."""
        shape = (self.grid.height, self.grid.width)
        out = {l.name: self.layers[i].reshape(shape) for i, l in enumerate(self.cfg.layers)}
        out["combined"] = self.layers.max(0).reshape(shape) if len(self.layers) else np.full(shape, UNKNOWN, np.int8)
        return out

    def obstacle_points(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.contact_points:
            return np.zeros((0, 2), np.float32), np.zeros(0, np.uint8)
        return np.concatenate(self.contact_points), np.concatenate(self.contact_labels)


class FusionWindow:
    """The newest frame of each camera, by *receipt* time: :meth:`current` returns the frames
    received within ``window_s`` of now. Header stamps play no part, so a frame stamped in the
    future (or at 0) cannot pin the grid or exclude the other cameras, and a camera that goes
    silent drops out of the grid ``window_s`` after its last frame."""

    def __init__(self, window_s: float = 0.5):
        self.window_s = float(window_s)
        self.latest: dict[str, tuple[float, object]] = {}

    def add(self, camera: str, receipt_s: float, frame) -> None:
        self.latest[camera] = (receipt_s, frame)

    def current(self, now_s: float) -> list[tuple[str, object]]:
        """[(camera, frame)] received within the window before ``now_s`` (older ones are forgotten)."""
        for cam in [c for c, (t, _) in self.latest.items() if now_s - t > self.window_s]:
            del self.latest[cam]
        return [(cam, f) for cam, (_, f) in self.latest.items()]


class GridMemory:
    """Temporal filter of the fused grids (``costmap_decay_s``): a cell that no camera sees now
    keeps the cost it last had, fading linearly to 0 over ``decay_s``, and is unknown after that;
    a cell seen now takes the larger of its new cost and its fading one (so a flickering pole keeps
    its cost, a car that drove off fades within ``decay_s``). Times are receipt times (the fusion
    window's clock), so header stamps cannot freeze or wipe the memory. ``decay_s`` 0: off."""

    def __init__(self, decay_s: float):
        self.decay_s = float(decay_s)
        self.cost: dict[str, np.ndarray] = {}  # the cost a cell had when last marked
        self.seen: dict[str, np.ndarray] = {}  # when it was last marked (receipt time, s)

    def __call__(self, grids: dict[str, np.ndarray], now_s: float) -> dict[str, np.ndarray]:
        if self.decay_s <= 0:
            return grids
        out = {}
        for name, g in grids.items():
            if name not in self.cost or self.cost[name].shape != g.shape:
                self.cost[name], self.seen[name] = np.full(g.shape, UNKNOWN, np.int8), np.full(g.shape, -np.inf)
            cost, seen = self.cost[name], self.seen[name]
            left = 1.0 - (now_s - seen) / self.decay_s  # fraction of the old cost still held
            alive = (cost >= 0) & (left > 0)
            faded = np.where(alive, np.rint(cost * np.clip(left, 0.0, 1.0)), UNKNOWN).astype(np.int8)
            mark = (g >= 0) & (g >= faded)
            cost[mark], seen[mark] = g[mark], now_s
            out[name] = np.maximum(g, faded)
        return out
