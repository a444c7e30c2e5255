"""The demo report's pictures, from the recorded outputs: overlays, importance with the selected regions,
error maps, each frame's set of pictures, the animation and the montage (costmap grids:
:mod:`.costmap_images`). Pure numpy/OpenCV, no ROS (an OccupancyGrid is read through its ``info`` and
``data`` fields only). Text and legends grow with the frame (:func:`~.visuals.ui_scale`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..classes import IGNORE_INDEX, colorize
from .costmap_images import grid_image, write_image
from .visuals import colorbar, importance_colors, legend_panel, ui_scale, with_legend

ANIMATION_WIDTH = 320  # px; the animated overlay is downscaled to this width
SELECTED_RGB = (0, 255, 255)  # cyan: the outline of the regions the Top-K branches refined
SELF_MASK_RGB = (255, 0, 255)  # magenta: the camera's self mask (pixels that never reach the costmap)


def overlay(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels in their palette colours over the image, half and half (void: the image dimmed)."""
    return (rgb * 0.5 + colorize(labels) * 0.5).astype(np.uint8)


def importance_view(rgb: np.ndarray, imp: np.ndarray, selected: np.ndarray | None,
                    bar: bool = True) -> np.ndarray:
    """Importance (inferno, the frame's range stretched over the whole scale) over the image; the
    selected regions outlined in cyan, or, when every pixel is selected (K = 1: every region refined),
    no outline (it would be the frame's border) but that fact written on the picture; ``bar``: a
    colour bar with the range below."""
    heat, lo, hi = importance_colors(imp)
    view = (rgb * 0.4 + heat * 0.6).astype(np.uint8)
    s = ui_scale(rgb.shape[1])
    if selected is not None and selected.shape == imp.shape and selected.all():
        _caption(view, "every region refined (K = 1)", s)
    elif selected is not None and selected.shape == imp.shape and selected.any():
        contours, _ = cv2.findContours(selected.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(view, contours, -1, SELECTED_RGB, max(1, int(round(2 * s)), rgb.shape[1] // 400))
    return np.concatenate([view, colorbar(view.shape[1], lo, hi)], 0) if bar else view


def _caption(view: np.ndarray, text: str, s: float) -> None:
    """``text`` at the top left of ``view``, white on a dark outline, sized by ``s``."""
    org, fs = (int(8 * s), int(22 * s)), 0.55 * s
    cv2.putText(view, text, org, cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), max(3, int(4 * s)), cv2.LINE_AA)
    cv2.putText(view, text, org, cv2.FONT_HERSHEY_SIMPLEX, fs, SELECTED_RGB, max(1, int(1.5 * s)), cv2.LINE_AA)


def mark_self_mask(view: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``view`` with the camera's self mask (bool, True = the robot's own body, never projected)
    dimmed and outlined in magenta; unchanged without a mask."""
    if mask is None or not mask.any():
        return view
    out = view.copy()
    out[mask] = (out[mask] * 0.4).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, SELF_MASK_RGB, max(1, int(round(2 * ui_scale(view.shape[1])))))
    return out


def error_map(rgb: np.ndarray, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """The image dimmed to grey; wrong pixels red, void ground truth (255, not scored) dark blue."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * 0.45
    view = np.repeat(grey[:, :, None], 3, 2).astype(np.uint8)
    void = gt == IGNORE_INDEX
    view[void] = (view[void] * 0.5 + np.array([0, 0, 90])).astype(np.uint8)
    view[(pred != gt) & ~void] = (255, 40, 40)
    return view


def write_animation(images: Path, frames: list) -> str | None:
    """images/overlay.gif (Pillow) or, without Pillow, images/overlay.mp4 (OpenCV): the overlays,
    ANIMATION_WIDTH px wide, 2 frames/s, each with its bag time."""
    if not frames:
        return None
    h0, w0 = frames[0][1].shape[:2]
    size = (ANIMATION_WIDTH, int(round(h0 * ANIMATION_WIDTH / w0 / 2)) * 2)
    small = []
    for t, img in frames:
        f = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        cv2.putText(f, f"t = {t:.0f} s", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(f, f"t = {t:.0f} s", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        small.append(f)
    try:
        from PIL import Image as PILImage
    except ImportError:
        PILImage = None
    if PILImage is not None:
        pics = [PILImage.fromarray(f).quantize(colors=128, method=PILImage.Quantize.MEDIANCUT) for f in small]
        pics[0].save(images / "overlay.gif", save_all=True, append_images=pics[1:], duration=500, loop=0,
                     optimize=True)
        return "images/overlay.gif"
    vw = cv2.VideoWriter(str(images / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 2.0, size)
    if not vw.isOpened():
        return None
    for f in small:
        vw.write(np.ascontiguousarray(f[:, :, ::-1]))
    vw.release()
    return "images/overlay.mp4"


def write_frame_pictures(images: Path, row: dict, rgb: np.ndarray, labels: np.ndarray, gt, importance, selected,
                         grid, pose, cam_info, footprint_m=None, self_mask: np.ndarray | None = None) -> list:
    """One frame's pictures, ``images/<name>_{overlay,importance,truth,error,costmap}.png`` (those its
    data allows; ``grid``: the node's combined grid at that frame or None); returns the montage tiles
    (overlay, importance, truth, error; None where missing). ``self_mask``: the camera's self mask,
    drawn on the overlay and the ground truth (:func:`mark_self_mask`)."""
    name = row["name"]
    ov = mark_self_mask(overlay(rgb, labels), self_mask)
    write_image(images / f"{name}_overlay.png", with_legend(ov, [labels, gt]))
    imp = None
    if importance is not None:
        imp = importance_view(rgb, importance, selected, bar=False)
        write_image(images / f"{name}_importance.png", importance_view(rgb, importance, selected))
    truth = err = None
    if gt is not None:
        truth, err = mark_self_mask(overlay(rgb, gt), self_mask), error_map(rgb, labels, gt)
        write_image(images / f"{name}_truth.png", with_legend(truth, gt))
        write_image(images / f"{name}_error.png", err)
    if grid is not None:
        write_image(images / f"{name}_costmap.png", grid_image(grid, pose, cam_info, scale=1, footprint_m=footprint_m))
    return [ov, imp, truth, err]


def montage_strips(labels: np.ndarray, gt, importance, frame_width: int, tiles: int = 4) -> list:
    """The strips under the montage's row of ``tiles`` frames: the class legend (classes of the labels
    and the ground truth) and, with ``importance``, its colour bar; sized for the frame, not the row."""
    s = ui_scale(frame_width)
    ids = set(np.unique(labels).tolist()) | (set(np.unique(gt).tolist()) if gt is not None else set())
    strips = [legend_panel(sorted(ids), tiles * frame_width, scale=s)]
    if importance is not None:
        _, lo, hi = importance_colors(importance)
        strips.append(colorbar(frame_width, lo, hi, scale=s))
    return strips


def montage_frame(rows: list) -> dict:
    """The frame the montage (and the costmap layers) show: a typical one, the scored frame of median
    pixel accuracy (the middle segmented frame when none is scored)."""
    seg = [r for r in rows if r["segmented"]]
    scored = [r for r in seg if r.get("pixel_accuracy") is not None]
    if not scored:
        return seg[len(seg) // 2]
    med = float(np.median([r["pixel_accuracy"] for r in scored]))
    return min(scored, key=lambda r: abs(r["pixel_accuracy"] - med))


def write_montage(images: Path, name: str, tiles: list, below: list) -> str | None:
    """images/montage.png: frame ``name``'s RGB ``tiles`` (overlay, importance with the selected
    regions outlined, ground truth, error map; None = missing) beside the combined costmap (with the
    field of view) at that frame; ``below``: RGB strips (the class legend, the importance colour
    bar) stacked under the row."""
    tiles = [t for t in tiles if t is not None]
    if not tiles:
        return None
    h = tiles[0].shape[0]
    grid_png = images / "costmap_combined.png"  # absent when the node published no grid
    g = cv2.imread(str(grid_png)) if grid_png.is_file() else None
    if g is not None:
        tiles.append(cv2.resize(g[:, :, ::-1], (int(g.shape[1] * h / g.shape[0]), h), interpolation=cv2.INTER_AREA))
    sep = np.full((h, int(round(6 * ui_scale(tiles[0].shape[1]))), 3), 255, np.uint8)
    row = [tiles[0]]
    for t in tiles[1:]:
        row += [sep, t]
    row = np.concatenate(row, 1)
    strips = [cv2.copyMakeBorder(b, 0, 0, 0, max(0, row.shape[1] - b.shape[1]), cv2.BORDER_CONSTANT,
                                 value=(255, 255, 255))[:, :row.shape[1]] for b in below]
    write_image(images / "montage.png", np.concatenate([row, *strips], 0))
    return name

