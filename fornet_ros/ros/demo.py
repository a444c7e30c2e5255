"""``fornet demo``: the whole pipeline through real DDS, with a report.

Makes (or takes) a bag -> starts segmentation_node in its own process on an isolated DDS domain
(loopback only) -> replays the bag into it with rclpy -> records the node's outputs -> writes
DIR/index.html + index.md, DIR/summary.json and the images they show (label overlays, importance
maps, costmap layers), scoring the labels where the bag has ground truth.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from ..bags import BagError, from_cityscapes, from_folder, iter_frames
from ..classes import colorize
from ..geometry import GeometryError, read_layer_config
from ..images import to_mono8
from .conversions import stamp_ns
from .processes import Spinner, isolated_env, start_node, stop_node


def _prepare_input(inp: str | None, work: Path, frames: int, size) -> tuple[Path, list | None]:
    if inp is None:
        from ..synthetic import write_cityscapes_like
        write_cityscapes_like(work / "scenes", frames, size)
        info = from_cityscapes(work / "scenes", work / "input.bag", split="val", storage="mcap", rate_hz=5.0)
        return work / "input.bag", info["camera_pose"]
    p = Path(inp)
    if (p / "metadata.yaml").is_file():
        return p, None
    if (p / "leftImg8bit").is_dir():
        info = from_cityscapes(p, work / "input.bag", split=next(iter(sorted(os.listdir(p / "leftImg8bit")))),
                               limit=frames, rate_hz=5.0)
        return work / "input.bag", info["camera_pose"]
    if p.is_dir():
        from_folder(p, work / "input.bag", limit=frames, rate_hz=5.0)
        return work / "input.bag", None
    raise BagError(f"--input must be a rosbag2 folder, a Cityscapes root or an image folder: {p}")


def run_demo(out: str, inp: str | None = None, checkpoint: str | None = None, frames: int = 12,
             size=(256, 512), rate: float = 1.0, timeout: float = 120.0, domain: int | None = None,
             allow_untrained: bool = False, costmap_config: str | None = None) -> dict:
    """``costmap_config``: the node's layer YAML (default: the built-in layers); every layer it
    names is recorded."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import OccupancyGrid
    from sensor_msgs.msg import Image

    from ..metrics import SegmentationMetrics
    from .bag_player import play

    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    bag, pose = _prepare_input(inp, out, frames, size)
    inputs = {stamp: (rgb, gt) for _, stamp, rgb, gt in iter_frames(bag)}
    cam = "camera"
    domain = domain if domain is not None else int(os.environ.get("ROS_DOMAIN_ID", 60 + os.getpid() % 40))
    env = isolated_env(domain)
    params = [f"cameras:=[{cam}]", "grid_width:=300", "grid_height:=300", "grid_origin:=[0.0, -15.0]",
              "diagnostics_period_s:=0.5", "input_reliability:=reliable", "input_depth:=1"]
    if checkpoint:
        params.append(f"checkpoint:={checkpoint}")
    if allow_untrained:
        params.append("allow_untrained:=true")
    if costmap_config:
        params.append(f"costmap_config:={costmap_config}")
    try:
        grid_layers = ["combined"] + [str(layer["name"]) for layer in read_layer_config(costmap_config)["layers"]]
    except (GeometryError, KeyError, TypeError) as e:
        raise RuntimeError(f"--costmap-config {costmap_config}: {e}") from e
    if pose:
        params.append(f"camera_pose.{cam}:=[{', '.join(str(float(v)) for v in pose)}]")
    log = open(out / "node.log", "w")
    node_proc = start_node(params, env, stdout=log)

    rclpy.init(domain_id=domain)
    node = rclpy.create_node("fornet_demo_recorder")
    got, lock = {}, threading.Lock()
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)

    def rec(topic):
        def cb(msg):
            with lock:
                if isinstance(msg, DiagnosticArray):
                    got.setdefault(topic, []).append(msg)
                    return
                key = stamp_ns(msg.header.stamp)
                got.setdefault(topic, {})[key] = msg
        return cb

    for o in ("labels", "color", "importance", "confidence"):
        node.create_subscription(Image, f"{cam}/semantic/{o}", rec(o), qos)
    for layer in grid_layers:
        node.create_subscription(OccupancyGrid, f"semantic_costmap/{layer}", rec(f"grid_{layer}"), qos)
    node.create_subscription(DiagnosticArray, "/diagnostics", rec("diagnostics"), qos)
    spinner = Spinner(node)
    summary = {"input": str(inp or "generated procedural scenes"), "bag": str(bag), "frames_in_bag": len(inputs)}
    try:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end and node.count_subscribers(f"/{cam}/image_raw") == 0:
            if node_proc.poll() is not None:
                raise RuntimeError(f"segmentation_node exited with {node_proc.returncode}; see {out / 'node.log'}")
            time.sleep(0.2)
        # the node needs a moment after its subscription appears to finish loading the model
        time.sleep(1.0)
        sent_t = {}

        def progress(n):
            sent_t[n] = time.monotonic()
        t_play = time.monotonic()
        n_sent = play(bag, rate=rate, node=node, start_delay=1.0, progress=progress)
        play_s = time.monotonic() - t_play
        last, quiet = -1, time.monotonic()
        while time.monotonic() < t_end:
            with lock:
                n = len(got.get("labels", {}))
            if n != last:
                last, quiet = n, time.monotonic()
            if n >= len(inputs) or time.monotonic() - quiet > 3.0:
                break
            time.sleep(0.1)
    finally:
        spinner.close()
        stop_node(node_proc)
        node.destroy_node()
        rclpy.try_shutdown()
        log.close()

    labels = got.get("labels", {})
    metrics = SegmentationMetrics()
    scored = 0
    rows = []
    for i, stamp in enumerate(sorted(labels)):
        msg = labels[stamp]
        lab = to_mono8(msg)
        rgb, gt = inputs.get(stamp, (None, None))
        if rgb is None:
            continue
        imp_msg = got.get("importance", {}).get(stamp)
        overlay = (rgb * 0.5 + colorize(lab) * 0.5).astype(np.uint8)
        name = f"frame_{i:03d}"
        cv2.imwrite(str(out / "images" / f"{name}_overlay.png"), overlay[:, :, ::-1])
        if imp_msg is not None:
            imp = to_mono8(imp_msg)  # mono8
            heat = cv2.applyColorMap(imp, cv2.COLORMAP_INFERNO)
            cv2.imwrite(str(out / "images" / f"{name}_importance.png"), (rgb[:, :, ::-1] * 0.4 + heat * 0.6).astype(np.uint8))
        if gt is not None:
            cv2.imwrite(str(out / "images" / f"{name}_truth.png"), (rgb * 0.5 + colorize(gt) * 0.5).astype(np.uint8)[:, :, ::-1])
            metrics.update(gt, lab)
            scored += 1
        rows.append((name, stamp, gt is not None, imp_msg is not None))
    grids = []
    for layer in grid_layers:
        msgs = got.get(f"grid_{layer}", {})
        if msgs:
            g = msgs[max(msgs)]
            vals = np.asarray(g.data, np.int8).reshape(g.info.height, g.info.width)
            # rows of the grid are y, columns x: show x (forward) up, y (left) left
            img = np.where(vals < 0, 128, 255 - np.clip(vals, 0, 100).astype(np.int32) * 255 // 100).astype(np.uint8)
            img = np.rot90(img, 1)  # x up
            img = img[:, ::-1]  # +y (left) on the left
            cv2.imwrite(str(out / "images" / f"costmap_{layer}.png"),
                        cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
            grids.append(layer)
    diag = {}
    for arr in reversed(got.get("diagnostics", [])):
        for st in arr.status:
            if st.name.endswith(cam):
                diag = {kv.key: kv.value for kv in st.values}
                break
        if diag:
            break
    summary.update({
        "messages_sent": n_sent, "play_s": round(play_s, 2), "frames_segmented": len(labels),
        "frames_scored": scored, "costmap_layers": grids, "node_diagnostics": diag,
        "metrics": metrics.compute() if scored else None,
    })
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _write_montage(out, rows, grids)
    _write_index(out, summary, rows, grids)
    return summary


def _write_montage(out: Path, rows, grids):
    """images/montage.png: one frame's overlay, importance and ground truth beside the combined costmap."""
    if not rows:
        return
    name = rows[len(rows) // 2][0]
    tiles = [cv2.imread(str(out / "images" / f"{name}_{k}.png")) for k in ("overlay", "importance", "truth")]
    tiles = [t for t in tiles if t is not None]
    h = tiles[0].shape[0]
    if "combined" in grids:
        g = cv2.imread(str(out / "images" / "costmap_combined.png"))
        tiles.append(cv2.resize(g, (int(g.shape[1] * h / g.shape[0]), h), interpolation=cv2.INTER_NEAREST))
    sep = np.full((h, 6, 3), 255, np.uint8)
    row = [tiles[0]]
    for t in tiles[1:]:
        row += [sep, t]
    cv2.imwrite(str(out / "images" / "montage.png"), np.concatenate(row, 1))


def _write_index(out: Path, s: dict, rows, grids):
    m = s.get("metrics") or {}
    d = s.get("node_diagnostics", {})
    lines = ["# fornet_ros demo report", "",
             f"Input: {s['input']} ({s['frames_in_bag']} frames). Segmented by the node over DDS: "
             f"{s['frames_segmented']}; scored against ground truth: {s['frames_scored']}.", ""]
    if m:
        lines += [f"mIoU {m['miou']:.3f}, pixel accuracy {m['pixel_accuracy']:.3f}, boundary IoU "
                  f"{m['boundary_iou'] or 0:.3f}, thin-structure mIoU {m['thin_miou'] if m['thin_miou'] is None else round(m['thin_miou'], 3)}", ""]
    if d:
        lines += [f"Node: {d.get('model')} on {d.get('device')}, K={d.get('topk_ratio')}, input {d.get('input_hz')} Hz, "
                  f"processed {d.get('processed_hz')} Hz, dropped {d.get('dropped_overwritten')}, "
                  f"inference p50 {d.get('inference_ms_p50')} ms, latency p50/p95 {d.get('latency_ms_p50')}/"
                  f"{d.get('latency_ms_p95')} ms", ""]
    lines += ["![montage: labels, importance, ground truth, combined costmap](images/montage.png)", ""]
    lines += ["| frame | labels (overlay) | importance | ground truth |", "|---|---|---|---|"]
    for name, stamp, has_gt, has_imp in rows:
        lines.append(f"| {name} | ![](images/{name}_overlay.png) | "
                     + (f"![](images/{name}_importance.png)" if has_imp else "") + " | "
                     + (f"![](images/{name}_truth.png)" if has_gt else "") + " |")
    if grids:
        lines += ["", "## Semantic costmap layers (x forward up, y left; grey unknown, white free, black cost 100)", ""]
        lines += [f"**{g}**: ![](images/costmap_{g}.png)" for g in grids]
    (out / "index.md").write_text("\n".join(lines) + "\n")
    html = ["<!doctype html><meta charset=utf-8><title>fornet_ros demo</title><body style='font-family:sans-serif'>"]
    for line in lines:
        if line.startswith("# "):
            html.append(f"<h1>{line[2:]}</h1>")
        elif line.startswith("## "):
            html.append(f"<h2>{line[3:]}</h2>")
        elif line.startswith("|---"):
            continue
        elif line.startswith("| "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            cells = [f"<img src='{c[4:-1]}' width=320>" if c.startswith("![](") else c for c in cells]
            html.append("<div>" + " ".join(cells) + "</div>")
        elif line.startswith("!["):
            html.append(f"<p><img src='{line.split('](', 1)[1][:-1]}'></p>")
        elif line.startswith("**"):
            name, img = line.split(": ", 1)
            html.append(f"<div><b>{name.strip('*')}</b><br><img src='{img[4:-1]}'></div>")
        elif line:
            html.append(f"<p>{line}</p>")
    (out / "index.html").write_text("\n".join(html))
