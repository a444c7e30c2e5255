"""``fornet demo``: the whole pipeline through real DDS, with a report.

Takes the packaged real clip (CamVid 0006R0, :mod:`fornet_ros.tools.clip`; the default), procedural scenes
(``synth``) or any bag / Cityscapes root / image folder -> starts segmentation_node in its own process
on an isolated DDS domain (loopback only) with ``use_sim_time`` -> replays the bag into it with
rclpy, publishing /clock from the bag's time -> records the node's outputs -> scores them against the
bag's ground truth and writes DIR/index.html + index.md, DIR/summary.json and the images they show.

Timing is never bag stamp against wall time: the node's latency is its own receipt -> publish time
(/diagnostics, monotonic clock); the end-to-end latency is publish -> labels received, both taken
here on one monotonic clock; the input age (stamp -> publish) is on the node's ROS clock, which is
the bag's /clock (so it is ``rate`` times the wall-clock delay).

The selected (Top-K) regions are not a topic: the report runs the same checkpoint locally
(:class:`~fornet_ros.inference.Segmenter`, as ``fornet eval`` does) on the frames the node segmented,
takes ``selected`` from it and scores it with :func:`fornet_ros.training.evaluation.evaluate`: that reference
mIoU is reported beside the node's (both on the same decoded frames, so they agree). When the
checkpoint cannot be loaded here (``allow_untrained``), the outline is the node's importance image
thresholded at its K-th quantile instead.

The costmap is scored too: the node's labels and the ground truth projected through one lookup
(:mod:`fornet_ros.mapping.costmap_score`, the node's grid, camera and layers); the node's published grid is
checked against that projection of its labels. The report itself (images, index.md/index.html) is
rendered by :mod:`fornet_ros.tools.demo_report` and the input, reference run and scores come from
:mod:`fornet_ros.tools.demo_input`, neither of which needs ROS; this module drives the node.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..classes import CITYSCAPES_CLASSES, IGNORE_INDEX
from ..mapping import GeometryError, Pose, read_layer_config
from ..mapping.costmap_score import EVAL_GRID, EVAL_MAX_RANGE
from ..node.frames import stamp_ns
from ..node.images import to_mono8
from ..tools.bags import BagError, iter_frames, read_camera_info
from ..tools.demo_images import (error_map, grid_image, importance_view, montage_frame, overlay, write_animation,
                                 write_image, write_layers, write_montage)
from ..tools.demo_input import (as_float, auto_rate, check_demo_classes, costmap_scorer, costmap_summary, default_pose,
                                demo_timing, last_diagnostics, prepare_input, reference_run, say, threshold_topk)
from ..tools.demo_report import write_index
from ..tools.visuals import colorbar, legend_panel, with_legend
from .processes import Spinner, isolated_env, start_node, stop_node

QUIET_S = 5.0  # stop waiting for outputs after this long without a new label image


def run_demo(out: str, inp: str | None = None, checkpoint: str | None = None, frames: int | None = None,
             size=(256, 512), rate: float | None = None, timeout: float = 180.0, domain: int | None = None,
             allow_untrained: bool = False, costmap_config: str | None = None) -> dict:
    """Runs the demo; returns the summary (also DIR/summary.json). ``inp``: see :func:`prepare_input`.
    ``frames``: the first N frames (default: all; 12 generated for synth). ``rate``: playback speed
    factor (default: :func:`auto_rate`). ``costmap_config``: the node's layer YAML (default: the
    built-in layers); every layer it names is recorded."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import OccupancyGrid
    from sensor_msgs.msg import Image

    from .bag_player import is_image_topic, play

    t_start = time.monotonic()
    out = Path(out)
    try:
        layer_dict = read_layer_config(costmap_config)
        grid_layers = ["combined"] + [str(layer["name"]) for layer in layer_dict["layers"]]
    except (GeometryError, KeyError, TypeError) as e:
        raise RuntimeError(f"--costmap-config {costmap_config}: {e}") from e
    src = prepare_input(inp, out, frames, size)
    (out / "images").mkdir(parents=True, exist_ok=True)
    cam = src.camera
    say(f"input: {src.description} ({src.bag}), camera '{cam}'{', compressed images' if src.compressed else ''}")
    played = []  # (stamp, rgb, gt) of the first N frames, in bag order
    for _, stamp, rgb, gt in iter_frames(src.bag, cam):
        played.append((stamp, rgb, gt))
        if frames and len(played) >= frames:
            break
    if not played:
        raise BagError(f"{src.bag}: no image frames of camera {cam}")
    try:
        cam_info = read_camera_info(src.bag, cam)
    except BagError:
        cam_info = None
    rate = rate or auto_rate([s for s, _, _ in played])
    inputs = {stamp: (rgb, gt) for stamp, rgb, gt in played}

    check_demo_classes(checkpoint)
    ckpt_label = checkpoint or "packaged default"
    ckpt_sha = None
    if checkpoint and Path(checkpoint).is_file():
        import hashlib
        import shutil
        # one snapshot for the node and the reference run here: a checkpoint that a training run
        # rewrites meanwhile would otherwise give the two different weights
        ckpt_sha = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
        if not str(checkpoint).endswith(".onnx"):  # an ONNX model may have external data beside it
            import atexit
            import tempfile
            snap = Path(tempfile.mkdtemp(prefix="fornet_demo_ckpt_"))
            atexit.register(shutil.rmtree, snap, True)
            checkpoint = str(shutil.copy2(checkpoint, snap / Path(checkpoint).name))
    domain = domain if domain is not None else int(os.environ.get("ROS_DOMAIN_ID", 60 + os.getpid() % 40))
    env = isolated_env(domain)
    g = EVAL_GRID  # the grid the costmap is scored on (fornet bag eval uses the same)
    params = [f"cameras:=[{cam}]", f"grid_width:={g.width}", f"grid_height:={g.height}", f"grid_resolution:={g.resolution}",
              f"grid_origin:=[{g.origin[0]}, {g.origin[1]}]", f"max_range:={EVAL_MAX_RANGE}",
              "diagnostics_period_s:=0.5", "input_reliability:=reliable", "input_depth:=1", "use_sim_time:=true"]
    if src.compressed:
        params.append("compressed:=true")
    if checkpoint:
        params.append(f"checkpoint:={checkpoint}")
    if allow_untrained:
        params.append("allow_untrained:=true")
    if costmap_config:
        params.append(f"costmap_config:={costmap_config}")
    if src.pose:
        params.append(f"camera_pose.{cam}:=[{', '.join(str(float(v)) for v in src.pose)}]")
    say(f"starting segmentation_node (checkpoint {ckpt_label}, ROS_DOMAIN_ID {domain}, "
        "use_sim_time)")
    log = open(out / "node.log", "w")
    node_proc = start_node(params, env, stdout=log)

    rclpy.init(domain_id=domain)
    node = rclpy.create_node("fornet_demo_recorder")
    got, recv_t, lock = {}, {}, threading.Lock()
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)

    def rec(topic):
        def cb(msg):
            t = time.monotonic()
            with lock:
                if isinstance(msg, DiagnosticArray):
                    got.setdefault(topic, []).append(msg)
                    return
                key = stamp_ns(msg.header.stamp)
                got.setdefault(topic, {})[key] = msg
                recv_t.setdefault(topic, {}).setdefault(key, t)
        return cb

    for o in ("labels", "importance"):
        node.create_subscription(Image, f"{cam}/semantic/{o}", rec(o), qos)
    for layer in grid_layers:
        node.create_subscription(OccupancyGrid, f"semantic_costmap/{layer}", rec(f"grid_{layer}"), qos)
    node.create_subscription(DiagnosticArray, "/diagnostics", rec("diagnostics"), qos)
    spinner = Spinner(node)
    image_topic = f"/{cam}/image_raw" + ("/compressed" if src.compressed else "")
    play_topics = [image_topic, f"/{cam}/camera_info"]
    sent_t = []  # wall (monotonic) time each image was published, in bag order
    n_sent, play_s = 0, 0.0
    try:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end and node.count_subscribers(image_topic) == 0:
            if node_proc.poll() is not None:
                raise RuntimeError(f"segmentation_node exited with {node_proc.returncode}; see {out / 'node.log'}")
            time.sleep(0.2)
        if node.count_subscribers(image_topic) == 0:
            raise RuntimeError(f"segmentation_node did not subscribe to {image_topic} within {timeout:.0f} s; "
                               f"see {out / 'node.log'}")
        say(f"node ready after {time.monotonic() - t_start:.1f} s")
        time.sleep(1.0)  # the node needs a moment after its subscription appears to finish starting
        dt = np.diff([s for s, _, _ in played]) / 1e9
        say(f"playing {len(played)} frames at rate {rate:g} (bag frames {np.median(dt) if len(dt) else 0:.2f} s apart, "
            f"{np.median(dt) / rate if len(dt) else 0:.2f} s in wall time), /clock from the bag")
        from tqdm import tqdm
        bar = tqdm(total=len(played), desc="[fornet demo] frames", unit="frame", file=sys.stderr,
                   dynamic_ncols=True, mininterval=0.5)

        def progress(n, topic, t):
            if is_image_topic(topic):
                sent_t.append(time.monotonic())
                with lock:
                    done = len(got.get("labels", {}))
                bar.set_postfix_str(f"segmented {done}", refresh=False)
                bar.update(1)
        t_play = time.monotonic()
        try:
            n_sent = play(src.bag, rate=rate, node=node, clock=True, topics=play_topics, start_delay=1.0,
                          progress=progress, max_images=len(played))
        finally:
            bar.close()
        play_s = time.monotonic() - t_play
        say("recording the node's last outputs")
        last, quiet = -1, time.monotonic()
        while time.monotonic() < t_end:
            with lock:
                n = len(got.get("labels", {}))
                grid_done = max(got.get("grid_combined", {0: None})) >= max(got.get("labels", {0: None}))
            if n != last:
                last, quiet = n, time.monotonic()
            if (n >= len(sent_t) and (grid_done or time.monotonic() - quiet > 1.5)) or time.monotonic() - quiet > QUIET_S:
                break
            time.sleep(0.1)
        time.sleep(0.6)  # one more /diagnostics (period 0.5 s) with every frame counted
    finally:
        spinner.close()
        rc = stop_node(node_proc)
        node.destroy_node()
        rclpy.try_shutdown()
        log.close()
    with lock:
        labels = {s: to_mono8(m) for s, m in got.get("labels", {}).items() if s in inputs}
        importance = {s: to_mono8(m) for s, m in got.get("importance", {}).items() if s in inputs}
    say(f"node stopped (exit {rc}); {len(labels)} of {len(sent_t)} frames segmented")
    if not labels:
        raise RuntimeError(f"segmentation_node published no labels for the {len(sent_t)} frames sent; "
                           f"see {out / 'node.log'}")

    diag = last_diagnostics(got.get("diagnostics", []), cam)
    say("scoring: the node's labels against the ground truth, and the same checkpoint run here (fornet eval)")
    order = [s for s, _, _ in played]
    segmented = [s for s in order if s in labels]
    reference = reference_run(checkpoint, [(s, *inputs[s]) for s in segmented])
    if "checkpoint" in reference:
        reference["checkpoint"] = ckpt_label
    selected = reference.pop("selected", {})
    classes = reference.pop("classes", None)
    from ..training.metrics import SegmentationMetrics
    metrics = SegmentationMetrics(len(classes), classes) if classes else SegmentationMetrics()
    k = as_float(diag.get("topk_ratio"))
    for s in segmented:
        if s not in selected and s in importance and k is not None:
            selected[s] = threshold_topk(importance[s], k)
    frames_rows = []
    for i, s in enumerate(order):
        rgb, gt = inputs[s]
        row = {"name": f"frame_{i:03d}", "stamp": s, "t_s": round((s - order[0]) / 1e9, 3),
               "segmented": s in labels, "scored": False}
        if i < len(sent_t) and s in recv_t.get("labels", {}):
            row["e2e_ms"] = round((recv_t["labels"][s] - sent_t[i]) * 1000, 1)
        if s in labels and gt is not None:
            metrics.update(gt, labels[s], selected.get(s) if reference.get("metrics") else None)
            valid = gt != IGNORE_INDEX
            row.update(scored=True, pixel_accuracy=round(float(np.mean(labels[s][valid] == gt[valid])), 4)
                       if valid.any() else None)
        frames_rows.append(row)
    scored = sum(r["scored"] for r in frames_rows)
    m = metrics.compute() if scored else None
    if m and reference.get("metrics"):
        reference["miou_difference"] = abs(m["miou"] - reference["metrics"]["miou"])

    say("writing the report")
    pose = Pose.from_list(src.pose) if src.pose else default_pose()
    timing = demo_timing(diag, sent_t, recv_t.get("labels", {}), order, rate, play_s)
    summary = {
        "input": src.description, "bag": str(src.bag), "camera": cam, "compressed": src.compressed,
        "camera_pose": list(src.pose) if src.pose else None, "checkpoint": ckpt_label,
        "checkpoint_sha256": ckpt_sha,
        "frames_in_bag": len(played), "messages_sent": n_sent, "images_sent": len(sent_t), "rate": rate,
        "sim_time": True, "play_s": round(play_s, 2), "frames_segmented": len(labels), "frames_scored": scored,
        "metrics": m, "reference": reference,
        "selected_regions": "local Segmenter (same checkpoint)" if reference.get("metrics") else
                            "node importance thresholded at its K-th quantile",
        "timing": timing, "node_diagnostics": diag, "frames": frames_rows,
    }
    images = out / "images"
    scorer, truth_fusers = costmap_scorer(layer_dict, classes, cam_info, pose), {}
    if scorer is not None:
        for s in segmented:
            if inputs[s][1] is not None:
                _, truth_fusers[s] = scorer.update(labels[s], inputs[s][1])
    fp = scorer.compute()["pixel_spans_cells_beyond_m"] if scorer is not None else None
    summary["costmap"] = costmap_summary(layer_dict, scorer, got, labels, segmented)
    present = set()
    for s in segmented:
        present |= set(np.unique(labels[s]).tolist()) | (set(np.unique(inputs[s][1]).tolist())
                                                          if inputs[s][1] is not None else set())
    summary["classes_shown"] = sorted(c for c in present if c < len(CITYSCAPES_CLASSES))
    shown = montage_frame(frames_rows)
    tiles = below = None
    for row in frames_rows:
        s = row["stamp"]
        if s not in labels:
            continue
        rgb, gt = inputs[s]
        name = row["name"]
        ov = overlay(rgb, labels[s])
        write_image(images / f"{name}_overlay.png", with_legend(ov, [labels[s], gt]))
        imp = importance_view(rgb, importance[s], selected.get(s), bar=False) if s in importance else None
        if imp is not None:
            write_image(images / f"{name}_importance.png", importance_view(rgb, importance[s], selected.get(s)))
        truth = overlay(rgb, gt) if gt is not None else None
        err = error_map(rgb, labels[s], gt) if gt is not None else None
        if gt is not None:
            write_image(images / f"{name}_truth.png", with_legend(truth, gt))
            write_image(images / f"{name}_error.png", err)
        g = got.get("grid_combined", {}).get(s)
        if g is not None:
            write_image(images / f"{name}_costmap.png", grid_image(g, pose, cam_info, scale=1, footprint_m=fp))
        if row is shown:
            tiles = [ov, imp, truth, err]
            below = [legend_panel(sorted(set(np.unique(labels[s]).tolist()) |
                                         (set(np.unique(gt).tolist()) if gt is not None else set())), 4 * rgb.shape[1])]
            if s in importance:
                from ..tools.visuals import importance_colors
                _, lo, hi = importance_colors(importance[s])
                below.append(colorbar(rgb.shape[1], lo, hi))
    summary["costmap_layers"], summary["costmap_frame"] = write_layers(images, got, grid_layers, shown["stamp"],
                                                                        pose, cam_info, fp)
    if summary["costmap_frame"] is not None and summary["costmap_frame"] in truth_fusers:
        write_image(images / "costmap_truth_combined.png",
               grid_image((truth_fusers[summary["costmap_frame"]].grids()["combined"], scorer.grid), pose, cam_info,
                          footprint_m=fp))
    summary["animation"] = write_animation(images, [(r["t_s"], overlay(inputs[r["stamp"]][0], labels[r["stamp"]]))
                                                    for r in frames_rows if r["segmented"]])
    summary["montage_frame"] = write_montage(images, shown["name"], tiles or [], below or [])
    summary["wall_s"] = round(time.monotonic() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_index(out, summary)
    return summary
