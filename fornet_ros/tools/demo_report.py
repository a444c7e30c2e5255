"""The demo report (``fornet demo``'s DIR/index.md, index.html and images), from the recorded
outputs: pure numpy/OpenCV, no ROS (an OccupancyGrid is read through its ``info`` and ``data``
fields only), so the report can be rendered and tested without DDS."""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

import cv2
import numpy as np

from ..classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, IGNORE_INDEX, colorize
from ..mapping import Pose
from .visuals import colorbar, importance_colors

ANIMATION_WIDTH = 320  # px; the animated overlay is downscaled to this width

# -- images ---------------------------------------------------------------------------------------

def _write(path: Path, rgb: np.ndarray) -> None:
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


def _write_layers(images: Path, got: dict, layers: list, stamp: int, pose, cam_info, footprint_m=None):
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
        _write(images / f"costmap_{layer}.png", grid_image(g, pose, cam_info, footprint_m=footprint_m))
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
    _write(images / "montage.png", np.concatenate([row, *strips], 0))
    return name


# -- index.md / index.html ------------------------------------------------------------------------

def _fmt(v, nd=3):
    return "n/a" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def report_text(s: dict) -> dict:
    """The report's sentences (shared by index.md and index.html)."""
    m, ref, t, d = s.get("metrics") or {}, s.get("reference") or {}, s["timing"], s.get("node_diagnostics") or {}
    text = {"input": (f"Input: {s['input']} (camera '{s['camera']}', {s['frames_in_bag']} frames played at rate "
                      f"{s['rate']:g} with /clock from the bag; the node runs with use_sim_time"
                      f"{', compressed:=true' if s['compressed'] else ''}"
                      f"{', camera_pose ' + str(s['camera_pose']) if s['camera_pose'] else ''}). "
                      f"Segmented by the node over DDS: {s['frames_segmented']}; scored against ground truth: "
                      f"{s['frames_scored']}. Checkpoint: {s['checkpoint']}"
                      + (f" (sha256 {s['checkpoint_sha256'][:12]}…)" if s.get("checkpoint_sha256") else "") + ".")}
    if m:
        text["metrics"] = (f"Clip mIoU {m['miou']:.4f} (the node's labels over DDS), pixel accuracy "
                           f"{m['pixel_accuracy']:.4f}, boundary IoU {_fmt(m['boundary_iou'], 4)} "
                           f"({m['boundary_px']} px band), thin-structure mIoU {_fmt(m['thin_miou'], 4)}.")
    if ref.get("metrics"):
        text["reference"] = (f"`fornet eval` on the same {ref['frames']} frames (the same checkpoint run here by "
                             f"fornet_ros.training.evaluation.evaluate): mIoU {ref['metrics']['miou']:.4f}; difference "
                             f"{_fmt(ref.get('miou_difference'), 7)}.")
    elif ref.get("error"):
        text["reference"] = f"No `fornet eval` reference: the checkpoint does not load here ({ref['error']})."
    text["timing"] = (f"Node: {d.get('model', '?')} on {d.get('device', '?')}, K={d.get('topk_ratio', '?')}. "
                      f"Rates: input {_fmt(t['input_hz'], 2)} Hz, output {_fmt(t['output_hz'], 2)} Hz (wall clock). "
                      f"Latency p50/p95: in the node (receipt to publish) {_fmt(t['node_latency_ms_p50'], 1)}/"
                      f"{_fmt(t['node_latency_ms_p95'], 1)} ms, inference p50 {_fmt(t['inference_ms_p50'], 1)} ms, "
                      f"end to end (bag player publish to labels received, one monotonic clock) "
                      f"{_fmt(t['e2e_latency_ms_p50'], 1)}/{_fmt(t['e2e_latency_ms_p95'], 1)} ms; input age p50 "
                      f"{_fmt(t['input_age_ms_p50_bag_clock'], 1)} ms on the bag's clock (= rate x wall delay). "
                      f"Drops: {t['not_segmented']} of {s['images_sent']} frames not segmented; node counters "
                      + (", ".join(f"{k} {v}" for k, v in t["drops"].items()) or "n/a") + ".")
    text["selected"] = (f"Importance: the selector's region importance (inferno, each frame's range stretched over the "
                        f"whole scale; the bar under it gives the range); cyan outlines: the regions refined "
                        f"by the Top-K branches, from the {s['selected_regions']}. Error map: red where the "
                        "labels differ from the ground truth, dark blue void (not scored), grey correct.")
    text["costmap"] = ("Semantic costmap (x forward up, y left; pale blue unknown, white free, grey to black cost 1 to "
                       "100; orange: "
                       "the camera and its horizontal field of view from CameraInfo K and the camera pose; blue ticks every "
                       "10 m ahead)"
                       + (f" at bag time {(s['costmap_frame'] - s['frames'][0]['stamp']) / 1e9:.1f} s (the montage's "
                          "frame)." if s.get("costmap_frame") is not None else "."))
    text["montage"] = (f"Montage ({s.get('montage_frame')}, "
                       + ("the scored frame of median pixel accuracy" if s["frames_scored"] else "the middle frame")
                       + "): labels, importance with the selected regions, ground truth, error map, combined costmap.")
    return text


def _per_frame_images(s: dict):
    for r in s["frames"]:
        if not r["segmented"]:
            continue
        name = r["name"]
        cells = [f"images/{name}_{k}.png" for k in ("overlay", "importance", "truth", "error", "costmap")]
        yield r, cells


def costmap_text(s: dict) -> list[str]:
    """Markdown lines explaining the grids: extent, resolution, what 0 / cost / unknown mean, the
    classes of each layer, the footprint range; then the costmap score table."""
    from ..mapping.costmap_score import format_table
    c = s.get("costmap") or {}
    g = c.get("grid")
    if not g:
        return []
    x0, y0, res = g["origin"][0], g["origin"][1], g["resolution"]
    x1, y1 = x0 + g["width"] * res, y0 + g["height"] * res
    fp = c.get("pixel_spans_cells_beyond_m")
    lines = [
        f"Each grid covers x {x0:g} to {x1:g} m ahead and y {y0:g} to {y1:g} m (left positive) of base_link in "
        f"{g['width']} x {g['height']} cells of {res:g} m; cells farther than max_range {g['max_range']:g} m from the "
        "camera stay unknown. In every layer a cell holds **the layer's cost** where a pixel of its classes lands "
        "(grey to black: cost 50 mid-grey, 100 black), **0** (white) where a pixel of another class landed (observed, "
        "free of this layer's classes), and **unknown** (-1, pale blue) where no pixel landed: outside the field of view, "
        "above the horizon, beyond max_range, or hidden behind an obstacle. Ground classes ("
        + ", ".join(c.get("ground_classes", [])) + ") project every pixel along its ray; obstacle classes ("
        + ", ".join(c.get("obstacle_classes", [])) + ") only their ground-contact pixel (the lowest pixel of each "
        "vertical run), so an object is a line of cells at its base. `combined` is the per-cell maximum over the "
        "layers (what Nav2 reads).",
        "",
    ]
    if fp:
        lines += [f"Magenta arc: beyond **{fp:.1f} m** one label pixel spans more than one {res:g} m cell (image rows "
                  "are sparser than cells there); such a cell takes the label of the pixel covering its centre, so "
                  "far-field detail is the image's, not the grid's (docs/costmap.md, far field).", ""]
    lines += ["| layer | classes | value where they land | image |", "|---|---|---|---|"]
    for layer in c.get("layers", []):
        note = (" (the same value as any observed cell: this layer only tells observed from unknown)"
                if layer["cost"] == 0 else "")
        img = f"images/costmap_{layer['name']}.png"
        shown = f"![]({img})" if layer["name"] in s.get("costmap_layers", []) else ""
        lines.append(f"| {layer['name']} | {', '.join(layer['classes'])} | {layer['cost']}{note} | {shown} |")
    shown = "![](images/costmap_combined.png)" if "combined" in s.get("costmap_layers", []) else ""
    lines += [f"| combined | all of the above | the maximum of the layers | {shown} |", ""]
    sc = c.get("score")
    if sc:
        agree = c.get("node_grid_agreement")
        lines += [
            "### Costmap score", "",
            f"The node's labels and the ground truth projected into the same layers (same camera model, pose, grid "
            f"and lookup: `fornet_ros.mapping.costmap_score`) over {sc['frames']} scored frames. Scored cells are those the "
            "ground truth observes. **Cell IoU**: cells holding the layer's classes in both grids over either. **False "
            "obstacles**: the share of ground-truth free cells (observed, without the layer's classes) the prediction "
            "marks with the layer's cost. **Missed obstacles**: the share of ground-truth marked cells the prediction "
            f"leaves free or unknown. `combined` is scored on its lethal cells (cost >= {sc['lethal']}). Obstacles are "
            "lines of contact cells, so a contact one cell off counts as both a false and a missed cell; the "
            "*within* columns forgive offsets up to the tolerance (a false mark with a ground-truth mark that near, "
            "a ground-truth mark with a predicted one that near)."
            + (f" The node's published combined grid equals this projection of its labels in {100 * agree:.2f} % of "
               "the cells." if agree is not None else ""),
            "", format_table(sc), "",
            "Ground truth (left) and the node's combined grid (right) at the montage's frame:", "",
            "![ground-truth combined costmap](images/costmap_truth_combined.png) "
            "![node combined costmap](images/costmap_combined.png)", ""]
    return lines


def legend_md(ids) -> str:
    """The class legend as markdown text: each class name after a swatch of its colour (HTML)."""
    return "Classes: " + " ".join(
        f'<span style="display:inline-block;width:12px;height:12px;border:1px solid #000;'
        f'background:rgb{tuple(CITYSCAPES_PALETTE[i])}"></span> {CITYSCAPES_CLASSES[i]}'
        for i in ids if 0 <= i < len(CITYSCAPES_CLASSES))


def write_index(out: Path, s: dict) -> None:
    """DIR/index.md, and DIR/index.html rendered from the same markdown (:func:`md_to_html`)."""
    text = report_text(s)
    files = {c for _, cells in _per_frame_images(s) for c in cells if (out / c).is_file()}
    md = ["# fornet_ros demo report", "", *(f"{text[k]}\n" for k in ("input", "metrics", "reference", "timing")
                                            if k in text)]
    md += [text["montage"], "", "![montage: labels, importance (selected regions outlined), ground truth, error map, "
           "combined costmap](images/montage.png)", ""]
    if s.get("classes_shown"):
        md += [legend_md(s["classes_shown"]), ""]
    if s.get("animation"):
        md += [f"Animated overlay of the clip: [{s['animation']}]({s['animation']})", "",
               f"![animated overlay]({s['animation']})", ""]
    md += ["## Frames", "", text["selected"], "",
           "| frame | bag time | pixel acc. | e2e ms | labels (overlay) | importance | ground truth | error | costmap |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r, cells in _per_frame_images(s):
        md.append(f"| {r['name']} | {r['t_s']:.1f} s | {_fmt(r.get('pixel_accuracy'), 3)} | {_fmt(r.get('e2e_ms'), 0)} | "
                  + " | ".join(f"![]({c})" if c in files else "" for c in cells) + " |")
    md += ["", "## Semantic costmap layers", "", text["costmap"], ""]
    explained = costmap_text(s)
    if explained:
        md += explained
    else:
        md += [f"**{g}**: ![](images/costmap_{g}.png)" for g in s["costmap_layers"]]
    md += ["", "Numbers: [summary.json](summary.json)."]
    (out / "index.md").write_text("\n".join(md) + "\n")
    (out / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><title>fornet_ros demo</title>\n"
        "<style>body{font-family:sans-serif;max-width:1600px}td,th{vertical-align:top;font-size:13px;"
        "border-bottom:1px solid #ddd;padding:2px 6px}table{border-collapse:collapse}td img{width:240px}"
        "p img{max-width:100%}code{background:#f2f2f2}</style><body>\n" + md_to_html("\n".join(md)) + "\n")


# -- markdown -> HTML ------------------------------------------------------------------------------
# The report's markdown uses a small, fixed subset: headings, paragraphs, pipe tables, images, links,
# `code`, **bold** and inline HTML swatches. No markdown package is among the project's dependencies
# (requirements.txt), so this renders exactly that subset; test_replay_demo checks no raw markup is left.

_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\(([^)\s]+\.mp4)\)"), r"<video src='\2' controls loop autoplay muted></video>"),
    (re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)"), r"<img src='\2' alt='\1'>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r"<a href='\2'>\1</a>"),
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<b>\1</b>"),
]
_SPAN = re.compile(r"<span style=\"[^\"<>]*\"></span>")


def md_inline(text: str) -> str:
    """One line of the subset -> HTML (text escaped; the report's own swatch spans kept)."""
    spans = _SPAN.findall(text)
    text = _SPAN.sub("\x00", text)
    text = htmllib.escape(text, quote=False)
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    for sp in spans:
        text = text.replace("\x00", sp, 1)
    return text


def md_to_html(md: str) -> str:
    out, para, table = [], [], []

    def flush():
        if para:
            out.append("<p>" + " ".join(md_inline(p) for p in para) + "</p>")
            para.clear()
        if table:
            head, *rows = [[c.strip() for c in r.strip().strip("|").split("|")] for r in table
                           if not re.fullmatch(r"\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*\|?", r.strip())]
            out.append("<table><tr>" + "".join(f"<th>{md_inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{md_inline(c)}</td>" for c in r) + "</tr>" for r in rows)
                       + "</table>")
            table.clear()

    for line in md.splitlines():
        m = re.match(r"(#{1,4}) (.*)", line)
        if m:
            flush()
            n = len(m.group(1))
            out.append(f"<h{n}>{md_inline(m.group(2))}</h{n}>")
        elif line.startswith("|"):
            if para:
                flush()
            table.append(line)
        elif not line.strip():
            flush()
        else:
            if table:
                flush()
            para.append(line)
    flush()
    return "\n".join(out)
