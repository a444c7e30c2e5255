"""The demo report's pages (``fornet demo``'s DIR/index.md and index.html) from the run's summary: the
sentences, the costmap explanation and score table, and a small markdown -> HTML renderer. No ROS, so
the report can be rendered and tested without DDS; its pictures are :mod:`.demo_images`."""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

from ..classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
from .demo_input import as_float


PLAYBACK_TEXT = {  # how the frames were played (fornet demo --playback)
    "paced": "paced: each image published once the node had answered the previous one, so no frame was dropped "
             "for speed",
    "recorded": "at the recorded timing, as a camera publishes: the node keeps its newest frame and drops the "
                "frames it is too slow for",
}


def _fmt(v, nd=3):
    return "n/a" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def report_text(s: dict) -> dict:
    """The report's sentences (shared by index.md and index.html)."""
    m, ref, t, d = s.get("metrics") or {}, s.get("reference") or {}, s["timing"], s.get("node_diagnostics") or {}
    text = {"input": (f"Input: {s['input']} (camera '{s['camera']}', {s['frames_in_bag']} frames played at rate "
                      f"{s['rate']:g} with /clock from the bag"
                      + (f", {PLAYBACK_TEXT[s['playback']]}" if s.get("playback") in PLAYBACK_TEXT else "")
                      + "; the node runs with use_sim_time"
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
    every = as_float(d.get("topk_ratio")) == 1.0
    text["selected"] = (f"Importance: the selector's region importance (inferno, each frame's range stretched over the "
                        f"whole scale; the bar under it gives the range); "
                        + ("at K = 1 every region is refined by the Top-K branches, so there is no outline (the "
                           "picture says so)" if every else
                           f"cyan outlines: the regions refined by the Top-K branches, from the {s['selected_regions']}")
                        + ". Error map: red where the labels differ from the ground truth, dark blue void (not "
                        "scored), grey correct.")
    text["costmap"] = ("Semantic costmap (x forward up, y left; pale blue unknown, white free, grey to black cost 1 to "
                       "100; orange: the camera and its horizontal field of view from CameraInfo K and the camera "
                       "pose; blue ticks every 10 m ahead, the distance written above each; each picture carries "
                       "this key under it). Lethal cells (100) are drawn a few cells wide so that they show at the "
                       "picture's scale: display only, the grid marks the one cell where an obstacle meets the ground"
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
