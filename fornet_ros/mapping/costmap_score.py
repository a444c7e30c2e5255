"""Score the semantic costmap, not only the labels (numpy only, no ROS).

A driving stack consumes the grid, so a model is also scored by the grid its labels make: the
predicted labels and the ground-truth labels are projected by the same :class:`~fornet_ros.mapping.GridFuser`
(same camera model, pose, grid and layers: one lookup) and compared cell by cell, per layer:

- **scored cells**: the cells the ground truth observes (a ground or contact pixel of a non-void
  label lands there). Cells only the prediction observes are not scored, as void pixels are not
  scored by mIoU.
- **cell IoU**: cells holding the layer's classes in both grids over cells holding them in either
  (scored cells only).
- **false obstacles** (layers with cost > 0): the share of ground-truth *free* cells (observed,
  without the layer's classes) that the prediction marks with the layer's cost.
- **missed obstacles** (layers with cost > 0): the share of ground-truth marked cells that the
  prediction leaves free or unknown.

``combined`` (the per-cell maximum over the layers, what Nav2 reads) is scored on its *lethal*
cells (cost >= ``lethal``, 100 by default = Nav2's lethal threshold for an OccupancyGrid): IoU of
lethal cells, false obstacles = ground-truth free cells (cost 0) made lethal, missed obstacles =
ground-truth lethal cells left below lethal (free, a lower cost, or unknown). A layer of cost 0
(the default ``road``) marks nothing that blocks: only its IoU is reported.

Contact cells make thin lines, so a contact one cell off counts as both a false and a missed cell.
With ``tolerance_cells`` r > 0 (and the grid's shape), two more shares forgive offsets up to r
cells (square neighbourhood): ``missed_obstacle_within`` counts ground-truth marked cells with no
predicted mark within r cells, ``false_obstacle_within`` predicted marks on ground-truth free cells
with no ground-truth mark within r cells. :class:`CostmapScorer` uses r = 3 (0.3 m at 0.1 m cells:
inside a typical Nav2 inflation radius of 0.55 m).

Counts are summed over frames before the ratios are taken (as a confusion matrix pools pixels), so
a clip's score weighs every scored cell equally.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .camera import Pose
from .fusion import GridFuser, LayerConfig
from .projection import GridSpec, build_lookup, downsample_labels

LETHAL = 100  # Nav2: an OccupancyGrid value >= lethal_threshold (default 100) is a lethal obstacle

# The grid the demo and ``fornet bag eval`` score on: 30 m ahead, +-15 m, 0.1 m cells (the node's
# parameters grid_width/height 300, grid_origin [0, -15]); max_range as the node's default.
EVAL_GRID = GridSpec(0.1, 300, 300, (0.0, -15.0))
EVAL_MAX_RANGE = 30.0
EVAL_TOLERANCE_CELLS = 3


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass
class _Counts:
    inter: int = 0
    union: int = 0
    gt_free: int = 0
    false_obstacle: int = 0
    gt_marked: int = 0
    missed: int = 0
    pred_marked: int = 0
    false_far: int = 0  # with a tolerance: false marks with no ground-truth mark within it
    missed_far: int = 0  # with a tolerance: ground-truth marks with no predicted mark within it

    def add(self, pred: np.ndarray, gt: np.ndarray, gt_free: np.ndarray, scored: np.ndarray,
            near=None) -> None:
        """``pred``, ``gt``: bool marks (the layer's classes / lethal); ``gt_free``: ground-truth
        free cells; ``scored``: ground-truth observed cells; ``near``: a function mask -> cells
        within the tolerance of a marked cell (None: no tolerance)."""
        p, g = pred & scored, gt & scored
        if near is not None:
            self.false_far += int(np.count_nonzero(pred & gt_free & ~near(gt)))
            self.missed_far += int(np.count_nonzero(g & ~near(pred)))
        self.inter += int(np.count_nonzero(p & g))
        self.union += int(np.count_nonzero(p | g))
        self.gt_free += int(np.count_nonzero(gt_free))
        self.false_obstacle += int(np.count_nonzero(pred & gt_free))
        self.gt_marked += int(np.count_nonzero(g))
        self.missed += int(np.count_nonzero(g & ~pred))
        self.pred_marked += int(np.count_nonzero(p))

    def result(self, cost: int, tolerance: bool) -> dict:
        blocks = cost > 0
        out = {"cost": cost, "iou": _ratio(self.inter, self.union),
               "false_obstacle": _ratio(self.false_obstacle, self.gt_free) if blocks else None,
               "missed_obstacle": _ratio(self.missed, self.gt_marked) if blocks else None}
        if tolerance:
            out.update(false_obstacle_within=_ratio(self.false_far, self.gt_free) if blocks else None,
                       missed_obstacle_within=_ratio(self.missed_far, self.gt_marked) if blocks else None)
        out.update(gt_cells=self.gt_marked, pred_cells=self.pred_marked, gt_free_cells=self.gt_free)
        return out


def combined_values(hits: np.ndarray, observed: np.ndarray, costs) -> np.ndarray:
    """The combined grid from per-layer hits (L, N) and observed cells (N,): the per-cell maximum of
    each layer's cost where it hit, 0 where observed, -1 unknown (as GridFuser.grids())."""
    out = np.where(observed, 0, -1).astype(np.int16)
    for hit, cost in zip(hits, costs):
        out = np.where(hit, np.maximum(out, cost), out)
    return out


@dataclass
class GridScore:
    """Accumulates the cell counts of :func:`score_marks` over frames; :meth:`compute` -> ratios."""

    names: tuple[str, ...]
    costs: tuple[int, ...]
    lethal: int = LETHAL
    shape: tuple[int, int] | None = None  # the grid's (height, width): needed for a tolerance
    tolerance_cells: int = 0
    frames: int = 0
    counts: dict = field(default_factory=dict)

    def __post_init__(self):
        self.counts = {n: _Counts() for n in ("combined", *self.names)}
        if self.tolerance_cells and self.shape is None:
            raise ValueError("a tolerance needs the grid's shape")
        self._kernel = np.ones((2 * self.tolerance_cells + 1,) * 2, np.uint8)

    def _near(self, mask: np.ndarray) -> np.ndarray:
        """Cells within ``tolerance_cells`` (square neighbourhood) of a cell of ``mask``."""
        m = cv2.dilate(mask.reshape(self.shape).astype(np.uint8), self._kernel)
        return m.reshape(-1).astype(bool)

    def update(self, pred_hits: np.ndarray, pred_observed: np.ndarray, gt_hits: np.ndarray,
               gt_observed: np.ndarray) -> None:
        """One frame: (L, N) bool hits per layer and (N,) bool observed cells of each grid."""
        pred_hits, gt_hits = np.asarray(pred_hits, bool), np.asarray(gt_hits, bool)
        pred_observed, gt_observed = np.asarray(pred_observed, bool), np.asarray(gt_observed, bool)
        if pred_hits.shape != gt_hits.shape or pred_hits.shape[0] != len(self.names):
            raise ValueError(f"hits {pred_hits.shape} / {gt_hits.shape} do not match {len(self.names)} layers")
        near = self._near if self.tolerance_cells else None
        for i, name in enumerate(self.names):
            self.counts[name].add(pred_hits[i], gt_hits[i], gt_observed & ~gt_hits[i], gt_observed, near)
        pc = combined_values(pred_hits, pred_observed, self.costs)
        gc = combined_values(gt_hits, gt_observed, self.costs)
        self.counts["combined"].add(pc >= self.lethal, gc >= self.lethal, gc == 0, gt_observed, near)
        self.frames += 1

    def compute(self) -> dict:
        """{'frames', 'lethal', 'layers': {name: {cost, iou, false_obstacle, missed_obstacle,
        gt_cells, pred_cells, gt_free_cells}}}, 'combined' first; None where a ratio has no cells."""
        tol = bool(self.tolerance_cells)
        layers = {"combined": self.counts["combined"].result(self.lethal, tol)}
        layers.update({n: self.counts[n].result(c, tol) for n, c in zip(self.names, self.costs)})
        return {"frames": self.frames, "lethal": self.lethal, "tolerance_cells": self.tolerance_cells,
                "layers": layers}


def score_marks(pred_hits, pred_observed, gt_hits, gt_observed, names, costs, lethal: int = LETHAL,
                shape=None, tolerance_cells: int = 0) -> dict:
    """The score of one frame's marks (see the module docstring); arrays as :meth:`GridScore.update`."""
    s = GridScore(tuple(names), tuple(int(c) for c in costs), lethal, shape, tolerance_cells)
    s.update(pred_hits, pred_observed, gt_hits, gt_observed)
    return s.compute()


class CostmapScorer:
    """Predicted and ground-truth labels of one camera -> the same layers -> :class:`GridScore`.

    ``camera``: :class:`~fornet_ros.mapping.CameraModel`; ``pose``: :class:`~fornet_ros.mapping.Pose`
    (or (R, t) of the optical frame); labels are downsampled as the node does (large images) and the
    lookup is built once per label size."""

    def __init__(self, camera, pose, config: LayerConfig, grid: GridSpec = EVAL_GRID,
                 max_range: float = EVAL_MAX_RANGE, lethal: int = LETHAL, tolerance_cells: int = EVAL_TOLERANCE_CELLS):
        self.camera, self.pose, self.cfg, self.grid, self.max_range = camera, pose, config, grid, max_range
        self.score = GridScore(tuple(l.name for l in config.layers), tuple(l.cost for l in config.layers), lethal,
                               (grid.height, grid.width), tolerance_cells)
        self._lookups: dict = {}  # label shape -> Lookup (a bag has one or two sizes)

    def lookup(self, shape):
        if shape not in self._lookups:
            self._lookups[shape] = build_lookup(self.camera, self.pose, self.grid, shape, max_range=self.max_range)
        return self._lookups[shape]

    def fuse(self, labels: np.ndarray) -> GridFuser:
        """One label image projected into the layers (a GridFuser: ``grids()``, ``hits``, ``observed``)."""
        labels = downsample_labels(np.ascontiguousarray(labels, np.uint8))
        f = GridFuser(self.grid, self.cfg)
        f.add(labels, self.lookup(labels.shape))
        return f

    def update(self, pred_labels: np.ndarray, gt_labels: np.ndarray) -> tuple[GridFuser, GridFuser]:
        """Scores one frame; returns the (prediction, ground truth) fusers, for drawing."""
        if pred_labels.shape != gt_labels.shape:
            raise ValueError(f"predicted labels {pred_labels.shape} and ground truth {gt_labels.shape} differ")
        p, g = self.fuse(pred_labels), self.fuse(gt_labels)
        self.score.update(p.hits, p.observed, g.hits, g.observed)
        return p, g

    def compute(self) -> dict:
        out = self.score.compute()
        fps = [r for r in (lk.footprint_range(self.grid.resolution) for lk in self._lookups.values()) if r is not None]
        fp = min(fps) if fps else None
        out.update(grid={"resolution": self.grid.resolution, "width": self.grid.width, "height": self.grid.height,
                         "origin": list(self.grid.origin), "max_range": self.max_range},
                   tolerance_m=round(self.score.tolerance_cells * self.grid.resolution, 6),
                   camera_pose=[self.pose.x, self.pose.y, self.pose.z, self.pose.roll, self.pose.pitch, self.pose.yaw]
                   if isinstance(self.pose, Pose) else None,
                   pixel_spans_cells_beyond_m=None if fp is None else round(fp, 2))
        return out


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def format_table(score: dict) -> str:
    """A :meth:`GridScore.compute` / :meth:`CostmapScorer.compute` result as a markdown table."""
    tol = score.get("tolerance_m") or score.get("tolerance_cells")
    unit = "m" if score.get("tolerance_m") else "cells"
    extra = f" | false within {tol:g} {unit} | missed within {tol:g} {unit}" if tol else ""
    rows = [f"| layer | cost | cell IoU | false obstacles | missed obstacles{extra} | ground-truth cells |",
            "|---|---|---|---|---|" + ("---|---|" if tol else "") + "---|"]
    for name, r in score["layers"].items():
        cost = f">= {r['cost']} (lethal)" if name == "combined" else str(r["cost"])
        iou = "n/a" if r["iou"] is None else f"{r['iou']:.3f}"
        within = (f" {_pct(r.get('false_obstacle_within'))} | {_pct(r.get('missed_obstacle_within'))} |"
                  if tol else "")
        rows.append(f"| {name} | {cost} | {iou} | {_pct(r['false_obstacle'])} | {_pct(r['missed_obstacle'])} |"
                    f"{within} {r['gt_cells']} |")
    return "\n".join(rows)
