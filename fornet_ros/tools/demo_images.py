"""The demo report's pictures, from the recorded outputs: overlays, importance with the selected regions,
error maps, costmap grids with the field of view, the animation and the montage. Pure numpy/OpenCV, no ROS
(an OccupancyGrid is read through its ``info`` and ``data`` fields only)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..classes import IGNORE_INDEX, colorize
from ..mapping import Pose
from .visuals import colorbar, importance_colors

ANIMATION_WIDTH = 320  # px; the animated overlay is downscaled to this width

def write_image(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


def overlay(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels in their palette colours over the image, half and half (void: the image dimmed)."""
    return (rgb * 0.5 + colorize(labels) * 0.5).astype(np.uint8)


def importance_view(rgb: np.ndarray, imp: np.ndarray, selected: np.ndarray | None,
                    bar: bool = True) -> np.ndarray:
    """Importance (inferno, the frame's range stretched over the whole scale) over the image; the
    selected regions outlined in cyan; ``bar``: a colour bar with that range below."""
    heat, lo, hi = importance_colors(imp)
    view = (rgb * 0.4 + heat * 0.6).astype(np.uint8)
    if selected is not None and selected.shape == imp.shape and selected.any():
        contours, _ = cv2.findContours(selected.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(view, contours, -1, (0, 255, 255), max(1, rgb.shape[1] // 400))
    return np.concatenate([view, colorbar(view.shape[1], lo, hi)], 0) if bar else view


def error_map(rgb: np.ndarray, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """The image dimmed to grey; wrong pixels red, void ground truth (255, not scored) dark blue."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * 0.45
    view = np.repeat(grey[:, :, None], 3, 2).astype(np.uint8)
    void = gt == IGNORE_INDEX
    view[void] = (view[void] * 0.5 + np.array([0, 0, 90])).astype(np.uint8)
    view[(pred != gt) & ~void] = (255, 40, 40)
    return view


def fov_rays(pose: Pose, cam_info: dict | None) -> list[tuple[float, float]] | None:
    """Ground-plane (x, y) unit directions of the image's left and right edges at the principal row,
    from CameraInfo K and the camera pose (pitch and roll projected away)."""
    if not cam_info:
        return None
    k = cam_info["k"]
    fx, cx, w = float(k[0]), float(k[2]), float(cam_info["width"])
    if fx <= 0 or w <= 0:
        return None
    R, _ = pose.optical_in_base()
    rays = []
    for u in (-0.5, w - 0.5):
        d = R @ np.array([(u - cx) / fx, 0.0, 1.0])
        n = np.hypot(d[0], d[1])
        if n < 1e-9:
            return None
        rays.append((d[0] / n, d[1] / n))
    return rays


UNKNOWN_RGB = (150, 185, 235)  # pale blue: no pixel landed (never a grey, which would read as a cost)
FOOTPRINT_RGB = (220, 0, 200)  # magenta: the range beyond which one label pixel spans more than one cell


def grid_values(g):
    """(values (h, w) int8, origin x, origin y, resolution) of an OccupancyGrid (read through its
    ``info`` and ``data``) or of a (values, GridSpec) pair."""
    if isinstance(g, tuple):
        vals, spec = g
        return np.asarray(vals, np.int8).reshape(spec.height, spec.width), spec.origin[0], spec.origin[1], spec.resolution
    h, w = g.info.height, g.info.width
    return (np.asarray(g.data, np.int8).reshape(h, w), g.info.origin.position.x, g.info.origin.position.y,
            g.info.resolution)


def grid_image(g, pose: Pose, cam_info: dict | None, scale: int = 2, footprint_m: float | None = None) -> np.ndarray:
    """A grid (OccupancyGrid, or (values, GridSpec)) as RGB, x (forward) up and y (left) to the left:
    white free (0), grey to black for cost 1..100 (50 mid-grey, 100 black), pale blue unknown (-1);
    the camera (orange dot), its horizontal field of view (orange lines), range ticks every 10 m
    (blue, on the left edge) and, given ``footprint_m``, the range beyond which one label pixel
    spans more than one cell (magenta arc)."""
    vals, ox, oy, res = grid_values(g)
    h, w = vals.shape
    grey = (255 - np.clip(vals, 0, 100).astype(np.int32) * 255 // 100).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, 2)
    rgb[vals < 0] = UNKNOWN_RGB
    img = np.rot90(rgb, 1)[:, ::-1]  # rows: x from far (top) to near; columns: y from left (+y) to right
    view = np.ascontiguousarray(cv2.resize(np.ascontiguousarray(img), None, fx=scale, fy=scale,
                                           interpolation=cv2.INTER_NEAREST))

    def px(x, y):  # base-frame metres -> image pixel (column, row)
        ix, iy = (x - ox) / res, (y - oy) / res  # continuous cell coordinates (corner = 0)
        return int(round((h - iy) * scale)), int(round((w - ix) * scale))
    for d in range(10, int(ox + w * res), 10):  # range ticks every 10 m ahead of the base frame
        col0, row = px(d, oy + h * res)
        cv2.line(view, (col0, row), (col0 + 6 * scale, row), (60, 110, 255), 1)
        cv2.putText(view, f"{d} m", (col0 + 7 * scale, row + 3 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.3 * scale,
                    (60, 110, 255), 1, cv2.LINE_AA)
    rays = fov_rays(pose, cam_info)
    colour = (255, 140, 0)
    if rays:
        reach = 2 * max(h, w) * res
        for dx, dy in rays:
            cv2.line(view, px(pose.x, pose.y), px(pose.x + dx * reach, pose.y + dy * reach), colour,
                     max(1, scale), cv2.LINE_AA)
    cv2.circle(view, px(pose.x, pose.y), 3 * scale, colour, -1)
    if footprint_m:
        r = int(round(footprint_m / res * scale))
        cv2.ellipse(view, px(pose.x, pose.y), (r, r), 0, 180, 360, FOOTPRINT_RGB, max(1, scale // 2), cv2.LINE_AA)
        col, row = px(pose.x + footprint_m, pose.y)
        cv2.putText(view, f"1 px > 1 cell beyond {footprint_m:.1f} m", (col + 4, max(10, row - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.3 * scale, FOOTPRINT_RGB, 1, cv2.LINE_AA)
    return view


def write_layers(images: Path, got: dict, layers: list, stamp: int, pose, cam_info, footprint_m=None):
    """Every layer's grid at the frame ``stamp`` (or the latest grid before it); returns (layers
    written, the grids' stamp)."""
    combined = got.get("grid_combined", {})
    if not combined:
        return [], None
    stamp = max((s for s in combined if s <= stamp), default=max(combined))
    written = []
    for layer in layers:
        msgs = got.get(f"grid_{layer}", {})
        if not msgs:
            continue
        g = msgs.get(stamp) or msgs[max(msgs)]
        write_image(images / f"costmap_{layer}.png", grid_image(g, pose, cam_info, footprint_m=footprint_m))
        written.append(layer)
    return written, stamp


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
    g = cv2.imread(str(images / "costmap_combined.png"))
    if g is not None:
        tiles.append(cv2.resize(g[:, :, ::-1], (int(g.shape[1] * h / g.shape[0]), h), interpolation=cv2.INTER_AREA))
    sep = np.full((h, 6, 3), 255, np.uint8)
    row = [tiles[0]]
    for t in tiles[1:]:
        row += [sep, t]
    row = np.concatenate(row, 1)
    strips = [cv2.copyMakeBorder(b, 0, 0, 0, max(0, row.shape[1] - b.shape[1]), cv2.BORDER_CONSTANT,
                                 value=(255, 255, 255))[:, :row.shape[1]] for b in below]
    write_image(images / "montage.png", np.concatenate([row, *strips], 0))
    return name


# -- index.md / index.html ------------------------------------------------------------------------
