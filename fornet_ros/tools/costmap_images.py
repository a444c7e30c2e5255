"""The demo report's costmap pictures: a grid (OccupancyGrid or (values, GridSpec)) drawn x forward up,
with the camera, its field of view, range ticks, the far-field arc and a key of its own under it.
Pure numpy/OpenCV, no ROS (an OccupancyGrid is read through its ``info`` and ``data`` fields only).

Lethal cells are drawn thicker than they are (display only, said in the key): an obstacle is a
line of ground-contact cells one cell thick, which a picture of a 300-cell grid shown a few
hundred pixels wide loses beside the grey of a sidewalk."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..mapping import Pose
from ..mapping.costmap_score import LETHAL
from .visuals import ui_scale

UNKNOWN_RGB = (150, 185, 235)  # pale blue: no pixel landed (never a grey, which would read as a cost)
FOOTPRINT_RGB = (220, 0, 200)  # magenta: the range beyond which one label pixel spans more than one cell
CAMERA_RGB = (255, 140, 0)  # orange: the camera and its horizontal field of view
TICK_RGB = (60, 110, 255)  # blue: range ticks every TICK_M ahead
TICK_M = 10
LETHAL_DISPLAY_SHARE = 1 / 100  # lethal cells drawn at least this share of the grid's width (display only)


def write_image(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


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


def grid_values(g):
    """(values (h, w) int8, origin x, origin y, resolution) of an OccupancyGrid (read through its
    ``info`` and ``data``) or of a (values, GridSpec) pair."""
    if isinstance(g, tuple):
        vals, spec = g
        return np.asarray(vals, np.int8).reshape(spec.height, spec.width), spec.origin[0], spec.origin[1], spec.resolution
    h, w = g.info.height, g.info.width
    return (np.asarray(g.data, np.int8).reshape(h, w), g.info.origin.position.x, g.info.origin.position.y,
            g.info.resolution)


def lethal_radius(vals: np.ndarray) -> int:
    """Display radius (cells) of lethal cells: a line of them at least LETHAL_DISPLAY_SHARE of the grid wide."""
    return max(1, int(round(max(vals.shape) * LETHAL_DISPLAY_SHARE / 2)))


def cost_colours(vals: np.ndarray, radius: int = 0) -> np.ndarray:
    """RGB per cell: white free (0), grey to black for cost 1..100 (50 mid-grey, 100 black), pale blue
    unknown (-1); cells >= LETHAL dilated by ``radius`` cells (display only)."""
    grey = (255 - np.clip(vals, 0, 100).astype(np.int32) * 255 // 100).astype(np.uint8)
    rgb = np.repeat(grey[:, :, None], 3, 2)
    rgb[vals < 0] = UNKNOWN_RGB
    if radius > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        rgb[cv2.dilate((vals >= LETHAL).astype(np.uint8), disc) > 0] = 0
    return rgb


def grid_image(g, pose: Pose, cam_info: dict | None, scale: int = 2, footprint_m: float | None = None,
               radius: int | None = None, key: bool = True) -> np.ndarray:
    """A grid as RGB, x (forward) up and y (left) to the left (colours: :func:`cost_colours`, lethal
    cells dilated by ``radius`` cells, default :func:`lethal_radius`); the camera (orange dot), its
    horizontal field of view (orange lines), range ticks every TICK_M m (blue, on the left edge, the
    distance written above each tick) and, given ``footprint_m``, the range beyond which one label
    pixel spans more than one cell (magenta arc); ``key``: :func:`grid_key` under it."""
    vals, ox, oy, res = grid_values(g)
    h, w = vals.shape
    radius = lethal_radius(vals) if radius is None else radius
    img = np.rot90(cost_colours(vals, radius), 1)[:, ::-1]  # rows: x from far (top) to near; columns: y left to right
    view = np.ascontiguousarray(cv2.resize(np.ascontiguousarray(img), None, fx=scale, fy=scale,
                                           interpolation=cv2.INTER_NEAREST))

    def px(x, y):  # base-frame metres -> image pixel (column, row)
        ix, iy = (x - ox) / res, (y - oy) / res  # continuous cell coordinates (corner = 0)
        return int(round((h - iy) * scale)), int(round((w - ix) * scale))
    font = 0.3 * scale
    for d in range(TICK_M, int(ox + w * res), TICK_M):  # ticks ahead of the base frame
        col0, row = px(d, oy + h * res)
        cv2.line(view, (col0, row), (col0 + 6 * scale, row), TICK_RGB, 1)
        # the distance above its tick, not after it: "-- 10 m" on one line reads as minus ten
        cv2.putText(view, f"{d} m", (col0 + 1, row - 2 * scale), cv2.FONT_HERSHEY_SIMPLEX, font, TICK_RGB, 1,
                    cv2.LINE_AA)
    rays = fov_rays(pose, cam_info)
    if rays:
        reach = 2 * max(h, w) * res
        for dx, dy in rays:
            cv2.line(view, px(pose.x, pose.y), px(pose.x + dx * reach, pose.y + dy * reach), CAMERA_RGB,
                     max(1, scale), cv2.LINE_AA)
    cv2.circle(view, px(pose.x, pose.y), 3 * scale, CAMERA_RGB, -1)
    if footprint_m:
        r = int(round(footprint_m / res * scale))
        cv2.ellipse(view, px(pose.x, pose.y), (r, r), 0, 180, 360, FOOTPRINT_RGB, max(1, scale // 2), cv2.LINE_AA)
        col, row = px(pose.x + footprint_m, pose.y)
        cv2.putText(view, f"1 px > 1 cell beyond {footprint_m:.1f} m", (col + 4, max(10, row - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, font, FOOTPRINT_RGB, 1, cv2.LINE_AA)
    if not key:
        return view
    strip = grid_key(view.shape[1], radius, footprint_m is not None and footprint_m > 0)
    if strip.shape[1] > view.shape[1]:  # a narrow grid: the key sets the width
        view = cv2.copyMakeBorder(view, 0, 0, 0, strip.shape[1] - view.shape[1], cv2.BORDER_CONSTANT,
                                  value=(255, 255, 255))
    return np.concatenate([view, strip], 0)


def grid_key(width: int, radius: int, footprint: bool) -> np.ndarray:
    """The key of a grid picture, ``width`` wide (wrapping onto more rows when narrow): unknown, free,
    50, lethal (with the display dilation said), camera and field of view, and the far-field arc."""
    s = ui_scale(width)
    entries = [(UNKNOWN_RGB, "unknown (-1)"), ((255, 255, 255), "free (0)"), ((128, 128, 128), "50"),
               ((0, 0, 0), f"lethal 100 (drawn {2 * radius + 1} cells wide)" if radius else "lethal 100"),
               (CAMERA_RGB, "camera, field of view"), (TICK_RGB, f"every {TICK_M} m ahead")]
    if footprint:
        entries.append((FOOTPRINT_RGB, "1 px > 1 cell beyond"))
    font, fs, row_h, sw = cv2.FONT_HERSHEY_SIMPLEX, 0.4 * s, int(round(18 * s)), int(round(14 * s))
    cells = [(c, t, sw + int(round(6 * s)) + cv2.getTextSize(t, font, fs, 1)[0][0] + int(round(12 * s)))
             for c, t in entries]
    rows, x = [[]], 4
    for c, t, cw in cells:
        if x + cw > max(width, cw + 8) and rows[-1]:
            rows.append([])
            x = 4
        rows[-1].append((c, t, x))
        x += cw
    out_w = max(width, max(cw for *_, cw in cells) + 8)
    panel = np.full((row_h * len(rows) + 4, out_w, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        y = 2 + r * row_h
        for c, t, x in row:
            top, bottom = (x, y + row_h // 6), (x + sw, y + row_h - row_h // 6)
            cv2.rectangle(panel, top, bottom, tuple(int(v) for v in c), -1)
            cv2.rectangle(panel, top, bottom, (0, 0, 0), max(1, int(s)))
            cv2.putText(panel, t, (x + sw + int(round(6 * s)), y + row_h - row_h // 3), font, fs, (0, 0, 0),
                        max(1, int(s)), cv2.LINE_AA)
    return panel


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
