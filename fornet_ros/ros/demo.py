"""``fornet demo``: the whole pipeline through real DDS, with a report (:func:`replay_demo`).

Takes the packaged real clip (CamVid 0006R0, :mod:`fornet_ros.tools.clip`; the default), procedural scenes
(``synth``) or any bag / Cityscapes root / image folder -> starts segmentation_node in its own process
on an isolated DDS domain (loopback only) with ``use_sim_time`` -> replays the bag into it with
rclpy, publishing /clock from the bag's time -> records the node's outputs -> scores them against the
bag's ground truth and writes DIR/index.html + index.md, DIR/summary.json and the images they show.

Playback is ``paced`` by default (:mod:`.bag_player`): each image waits until the node has answered
the previous one, so a bag faster than the node (a 2048x1024 Cityscapes bag at 17 Hz) is scored
whole; ``recorded`` plays at the recorded timing x rate, as a camera would, and the node keeps only
its newest frame. The report says which ran.

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
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..classes import CITYSCAPES_CLASSES
from ..mapping import GeometryError, Pose, read_layer_config
from ..mapping.costmap_score import EVAL_GRID, EVAL_MAX_RANGE
from ..mapping.self_mask import SelfMask
from ..node.frames import stamp_ns
from ..node.images import to_mono8
from ..tools.bags import BagError, iter_frames, read_camera_info
from ..tools.costmap_images import grid_image, write_image, write_layers
from ..tools.demo_images import (montage_frame, montage_strips, overlay, write_animation, write_frame_pictures,
                                 write_montage)
from ..tools.demo_input import (DemoInput, auto_rate, check_demo_classes, costmap_scorer, costmap_summary, default_pose,
                                demo_timing, node_diagnostics, prepare_input, say, score_frames, snapshot_checkpoint)
from ..tools.demo_report import write_index
from .bag_player import ANSWER_TIMEOUT_S, PLAYBACK_MODES
from .processes import Spinner, isolated_env, start_node, stop_node

QUIET_S = 5.0  # stop waiting for outputs after this long without a new label image
GRID_GRACE_S = 1.5  # every frame labelled: wait this long at most for the last frame's grid
NODE_SETTLE_S = 1.0  # the node needs a moment after its subscription appears to finish starting
PLAYER_START_DELAY_S = 1.0  # the player's pause between subscribers matched and the first message
DIAGNOSTICS_PERIOD_S = 0.5  # the node's /diagnostics period during the demo
DOMAIN_BASE, DOMAIN_SPAN = 60, 40  # without ROS_DOMAIN_ID: 60 + pid % 40, clear of the default 0 and of the tests'


@dataclass
class _Played:
    """The input as played: the first N frames (stamp, rgb, gt) in bag order and the camera's CameraInfo."""
    src: DemoInput
    frames: list
    cam_info: dict | None

    @cached_property
    def order(self) -> list:
        return [s for s, _, _ in self.frames]

    @cached_property
    def inputs(self) -> dict:
        return {s: (rgb, gt) for s, rgb, gt in self.frames}


def _read_input(inp, out: Path, frames, size) -> _Played:
    src = prepare_input(inp, out, frames, size)
    say(f"input: {src.description} ({src.bag}), camera '{src.camera}'{', compressed images' if src.compressed else ''}")
    played = []
    for _, stamp, rgb, gt in iter_frames(src.bag, src.camera):
        played.append((stamp, rgb, gt))
        if frames and len(played) >= frames:
            break
    if not played:
        raise BagError(f"{src.bag}: no image frames of camera {src.camera}")
    try:
        cam_info = read_camera_info(src.bag, src.camera)
    except BagError:
        cam_info = None
    return _Played(src, played, cam_info)


def _node_params(src: DemoInput, checkpoint, allow_untrained: bool, costmap_config) -> list[str]:
    """The node's parameters: the scored grid (the one `fornet bag eval` uses), sim time, one reliable frame."""
    g, cam = EVAL_GRID, src.camera
    params = [f"cameras:=[{cam}]", f"grid_width:={g.width}", f"grid_height:={g.height}", f"grid_resolution:={g.resolution}",
              f"grid_origin:=[{g.origin[0]}, {g.origin[1]}]", f"max_range:={EVAL_MAX_RANGE}",
              f"diagnostics_period_s:={DIAGNOSTICS_PERIOD_S}", "input_reliability:=reliable", "input_depth:=1",
              "use_sim_time:=true"]
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
    if src.self_mask_rows:
        params.append(f"self_mask_rows.{cam}:={int(src.self_mask_rows)}")
    return params


class _Recorder:
    """The node's outputs as they arrive: label / importance images and grids by stamp (with the
    monotonic receipt time of each), and every /diagnostics report with its receipt time."""

    def __init__(self, node, cam: str, grid_layers: list):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import OccupancyGrid
        from sensor_msgs.msg import Image
        self.got, self.recv_t, self.diagnostics, self.lock = {}, {}, [], threading.Lock()
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for o in ("labels", "importance"):
            node.create_subscription(Image, f"{cam}/semantic/{o}", self._on(o), qos)
        for layer in grid_layers:
            node.create_subscription(OccupancyGrid, f"semantic_costmap/{layer}", self._on(f"grid_{layer}"), qos)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, qos)

    def _on(self, topic):
        def cb(msg):
            t, key = time.monotonic(), stamp_ns(msg.header.stamp)
            with self.lock:
                self.got.setdefault(topic, {})[key] = msg
                self.recv_t.setdefault(topic, {}).setdefault(key, t)
        return cb

    def _on_diagnostics(self, msg):
        with self.lock:
            self.diagnostics.append((time.monotonic(), msg))

    def labelled(self) -> int:
        with self.lock:
            return len(self.got.get("labels", {}))

    def grid_caught_up(self) -> bool:
        """The combined grid holds the newest labelled frame."""
        with self.lock:
            return max(self.got.get("grid_combined", {0: None})) >= max(self.got.get("labels", {0: None}))

    def images(self, stamps) -> tuple[dict, dict]:
        """(labels, importance) of the frames ``stamps`` as mono8 arrays."""
        with self.lock:
            return tuple({s: to_mono8(m) for s, m in self.got.get(o, {}).items() if s in stamps}
                         for o in ("labels", "importance"))


def _wait_for_subscription(node, node_proc, topic: str, t_end: float, log: Path) -> None:
    while time.monotonic() < t_end and node.count_subscribers(topic) == 0:
        if node_proc.poll() is not None:
            raise RuntimeError(f"segmentation_node exited with {node_proc.returncode}; see {log}")
        time.sleep(0.2)
    if node.count_subscribers(topic) == 0:
        raise RuntimeError(f"segmentation_node did not subscribe to {topic} within --timeout; see {log}")


def _play(node, rec: _Recorder, p: _Played, rate: float, playback: tuple, t_end: float):
    """Plays the frames into the node and waits for its last outputs; returns (monotonic publish time
    of each image, messages sent, playback seconds). The progress bar counts images sent and
    frames segmented, and is closed only once the last outputs are in."""
    from tqdm import tqdm

    from .bag_player import is_image_topic, play
    cam = p.src.camera
    image_topic = f"/{cam}/image_raw" + ("/compressed" if p.src.compressed else "")
    playback, answer_timeout = playback
    dt = np.diff(p.order) / 1e9
    say(f"playing {len(p.frames)} frames {playback}: at rate {rate:g} (bag frames "
        f"{np.median(dt) if len(dt) else 0:.2f} s apart, {np.median(dt) / rate if len(dt) else 0:.2f} s in wall time)"
        + (", each once the node has answered the previous one" if playback == "paced" else "") + ", /clock from the bag")
    bar = tqdm(total=len(p.frames), desc="[fornet demo] frames", unit="frame", file=sys.stderr, dynamic_ncols=True,
               mininterval=0.5)
    sent_t = []

    def progress(n, topic, t):
        if is_image_topic(topic):
            sent_t.append(time.monotonic())
            bar.set_postfix_str(f"segmented {rec.labelled()}", refresh=False)
            bar.update(1)
    t_play = time.monotonic()
    try:
        n_sent = play(p.src.bag, rate=rate, node=node, clock=True, topics=[image_topic, f"/{cam}/camera_info"],
                      start_delay=PLAYER_START_DELAY_S, progress=progress, max_images=len(p.frames), mode=playback,
                      answer_timeout=answer_timeout)
        play_s = time.monotonic() - t_play
        last, quiet = -1, time.monotonic()
        while time.monotonic() < t_end:
            n = rec.labelled()
            if n != last:
                last, quiet = n, time.monotonic()
                bar.set_postfix_str(f"segmented {n}")
            silent = time.monotonic() - quiet
            if (n >= len(sent_t) and (rec.grid_caught_up() or silent > GRID_GRACE_S)) or silent > QUIET_S:
                break
            time.sleep(0.1)
    finally:
        bar.close()
    time.sleep(DIAGNOSTICS_PERIOD_S * 1.2)  # one more /diagnostics with every frame counted
    return sent_t, n_sent, play_s


def _run_node(out: Path, p: _Played, params: list, domain: int, rate: float, playback: tuple, timeout: float,
              grid_layers: list, t_start: float):
    """The node in its own process, our recorder beside it, the playback; returns (recorder, publish
    times, messages sent, playback seconds, the node's exit code)."""
    import rclpy
    env = isolated_env(domain)
    with open(out / "node.log", "w") as log:
        node_proc = start_node(params, env, stdout=log)
        rclpy.init(domain_id=domain)
        node = rclpy.create_node("fornet_demo_recorder")
        rec = _Recorder(node, p.src.camera, grid_layers)
        spinner = Spinner(node)
        try:
            t_end = time.monotonic() + timeout
            image_topic = f"/{p.src.camera}/image_raw" + ("/compressed" if p.src.compressed else "")
            _wait_for_subscription(node, node_proc, image_topic, t_end, out / "node.log")
            say(f"node ready after {time.monotonic() - t_start:.1f} s")
            time.sleep(NODE_SETTLE_S)
            sent_t, n_sent, play_s = _play(node, rec, p, rate, playback, t_end)
        finally:
            spinner.close()
            rc = stop_node(node_proc)
            node.destroy_node()
            rclpy.try_shutdown()
    return rec, sent_t, n_sent, play_s, rc


def _write_pictures(out: Path, summary: dict, p: _Played, labels, importance, selected, got, grid_layers, pose,
                    scorer, truth_fusers) -> None:
    """Every segmented frame's pictures, the layers and truth grid at the montage's frame, the
    animation and the montage; their names go into ``summary``."""
    images, inputs = out / "images", p.inputs
    fp = (summary["costmap"] or {}).get("pixel_spans_cells_beyond_m")
    shown = montage_frame(summary["frames"])
    tiles = below = None
    for row in summary["frames"]:
        s = row["stamp"]
        if s not in labels:
            continue
        rgb, gt = inputs[s]
        # the camera's self mask (pixels of the robot itself, which the node never projects)
        t = write_frame_pictures(images, row, rgb, labels[s], gt, importance.get(s), selected.get(s),
                                 got.get("grid_combined", {}).get(s), pose, p.cam_info, fp,
                                 self_mask=SelfMask(rows=p.src.self_mask_rows).pixels(rgb.shape))
        if row is shown:
            tiles, below = t, montage_strips(labels[s], gt, importance.get(s), rgb.shape[1])
    summary["costmap_layers"], summary["costmap_frame"] = write_layers(images, got, grid_layers, shown["stamp"],
                                                                        pose, p.cam_info, fp)
    if summary["costmap_frame"] is not None and summary["costmap_frame"] in truth_fusers:
        truth = (truth_fusers[summary["costmap_frame"]].grids()["combined"], scorer.grid)
        write_image(images / "costmap_truth_combined.png", grid_image(truth, pose, p.cam_info, footprint_m=fp))
    summary["animation"] = write_animation(images, [(r["t_s"], overlay(inputs[r["stamp"]][0], labels[r["stamp"]]))
                                                    for r in summary["frames"] if r["segmented"]])
    summary["montage_frame"] = write_montage(images, shown["name"], tiles or [], below or [])


def replay_demo(out: str, inp: str | None = None, checkpoint: str | None = None, frames: int | None = None,
                size=(256, 512), rate: float | None = None, timeout: float = 180.0, domain: int | None = None,
                allow_untrained: bool = False, costmap_config: str | None = None, playback: str = "paced",
                answer_timeout: float = ANSWER_TIMEOUT_S, self_mask_rows: int = 0) -> dict:
    """Runs the demo; returns the summary (also DIR/summary.json). ``inp``: see :func:`prepare_input`.
    ``frames``: the first N frames (default: all; 12 generated for synth). ``rate``: playback speed
    factor (default: :func:`auto_rate`). ``playback``: ``paced`` or ``recorded`` (module docstring).
    ``answer_timeout``: paced, the longest wait for the node's answer to an image.
    ``costmap_config``: the node's layer YAML (default: the built-in layers); every layer it names is
    recorded. ``self_mask_rows``: the camera's own vehicle, rows from the bottom (e.g. Cityscapes' ego
    hood): the node keeps them out of the costmap and the report draws them."""
    t_start, out = time.monotonic(), Path(out)
    if playback not in PLAYBACK_MODES:
        raise RuntimeError(f"playback must be one of {PLAYBACK_MODES}, got {playback!r}")
    try:
        layer_dict = read_layer_config(costmap_config)
        grid_layers = ["combined"] + [str(layer["name"]) for layer in layer_dict["layers"]]
    except (GeometryError, KeyError, TypeError) as e:
        raise RuntimeError(f"--costmap-config {costmap_config}: {e}") from e
    p = _read_input(inp, out, frames, size)
    p.src.self_mask_rows = int(self_mask_rows)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rate = rate or auto_rate(p.order)
    check_demo_classes(checkpoint)
    ckpt_label = checkpoint or "packaged default"
    checkpoint, ckpt_sha = snapshot_checkpoint(checkpoint)
    domain = domain if domain is not None else int(os.environ.get("ROS_DOMAIN_ID", DOMAIN_BASE + os.getpid() % DOMAIN_SPAN))
    say(f"starting segmentation_node (checkpoint {ckpt_label}, ROS_DOMAIN_ID {domain}, use_sim_time)")
    rec, sent_t, n_sent, play_s, rc = _run_node(out, p, _node_params(p.src, checkpoint, allow_untrained, costmap_config),
                                                domain, rate, (playback, answer_timeout), timeout, grid_layers, t_start)
    labels, importance = rec.images(set(p.order))
    say(f"node stopped (exit {rc}); {len(labels)} of {len(sent_t)} frames segmented")
    if not labels:
        raise RuntimeError(f"segmentation_node published no labels for the {len(sent_t)} frames sent; "
                           f"see {out / 'node.log'}")
    playing = (sent_t[0], sent_t[-1] + DIAGNOSTICS_PERIOD_S * 1.5) if sent_t else None
    diag = node_diagnostics(rec.diagnostics, p.src.camera, playing)
    say("scoring: the node's labels against the ground truth, and the same checkpoint run here (fornet eval)")
    recv = rec.recv_t.get("labels", {})
    rows, m, reference, selected, classes = score_frames(p.order, p.inputs, labels, importance, checkpoint,
                                                      ckpt_label, diag, sent_t, recv, p.src.prediction_lut)
    say("writing the report")
    src, segmented = p.src, [s for s in p.order if s in labels]
    summary = {
        "input": src.description, "bag": str(src.bag), "camera": src.camera, "compressed": src.compressed,
        "camera_pose": list(src.pose) if src.pose else None, "checkpoint": ckpt_label, "checkpoint_sha256": ckpt_sha,
        "frames_in_bag": len(p.frames), "messages_sent": n_sent, "images_sent": len(sent_t), "rate": rate,
        "playback": playback, "sim_time": True, "play_s": round(play_s, 2), "frames_segmented": len(labels),
        "frames_scored": sum(r["scored"] for r in rows), "metrics": m, "reference": reference,
        "selected_regions": "local Segmenter (same checkpoint)" if reference.get("metrics") else
                            "node importance thresholded at its K-th quantile",
        "timing": demo_timing(diag, sent_t, recv, p.order, rate, play_s), "node_diagnostics": diag, "frames": rows,
    }
    pose = Pose.from_list(src.pose) if src.pose else default_pose()
    scorer, truth_fusers = costmap_scorer(layer_dict, classes, p.cam_info, pose), {}
    for s in segmented if scorer is not None else []:
        if p.inputs[s][1] is not None:
            _, truth_fusers[s] = scorer.update(labels[s], p.inputs[s][1])
    summary["costmap"] = costmap_summary(layer_dict, scorer, rec.got, labels, segmented)
    present = set()
    for s in segmented:
        gt = p.inputs[s][1]
        present |= set(np.unique(labels[s]).tolist()) | (set(np.unique(gt).tolist()) if gt is not None else set())
    summary["classes_shown"] = sorted(c for c in present if c < len(CITYSCAPES_CLASSES))
    _write_pictures(out, summary, p, labels, importance, selected, rec.got, grid_layers, pose, scorer, truth_fusers)
    summary["wall_s"] = round(time.monotonic() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_index(out, summary)
    return summary
