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
rendered by :mod:`fornet_ros.tools.demo_report`, which needs no ROS; this module drives the node.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tools.bags import BagError, bag_cameras, from_cityscapes, from_folder, iter_frames, open_reader, read_camera_info
from ..classes import CITYSCAPES_CLASSES, IGNORE_INDEX
from ..mapping.costmap_score import EVAL_GRID, EVAL_MAX_RANGE
from ..tools.demo_report import (_write, _write_layers, error_map, grid_image, importance_view, montage_frame,
                           overlay, write_animation, write_index, write_montage)
from ..mapping import GeometryError, Pose, read_layer_config
from ..tools.visuals import colorbar, legend_panel, with_legend
from ..node.images import to_mono8
from ..node.frames import stamp_ns
from .processes import Spinner, isolated_env, start_node, stop_node

PLAYBACK_FPS = 2.0  # automatic --rate: about this many frames per wall-clock second (never slower than recorded)
SYNTH_FRAMES = 12  # frames generated for --input synth when --frames is not given
QUIET_S = 5.0  # stop waiting for outputs after this long without a new label image


def say(msg: str) -> None:
    """One line of progress on stderr (stdout carries the command's JSON result)."""
    print(f"[fornet demo] {msg}", file=sys.stderr, flush=True)


@dataclass
class DemoInput:
    bag: Path
    camera: str
    compressed: bool  # the camera's images are CompressedImage (<cam>/image_raw/compressed)
    pose: tuple | None  # camera_pose.<cam> for the node (None: the node's default)
    description: str
    is_clip: bool = False


def prepare_input(inp: str | None, work: Path, frames: int | None, size) -> DemoInput:
    """``inp``: None or 'clip' (the packaged CamVid clip), 'synth' (procedural scenes), a rosbag2
    folder, a Cityscapes root or an image folder (written to ``work/input.bag``)."""
    pose, desc, is_clip = None, str(inp), False
    if inp in (None, "clip"):
        from ..tools.clip import CLIP_NAME, DEMO_CAMERA_POSE, demo_clip_path
        bag, pose, desc, is_clip = demo_clip_path(), DEMO_CAMERA_POSE, f"packaged real clip {CLIP_NAME}", True
        if not (bag / "metadata.yaml").is_file():
            raise BagError(f"the packaged clip is missing: {bag}")
    elif inp == "synth":
        from ..tools.synthetic import write_cityscapes_like
        work.mkdir(parents=True, exist_ok=True)
        write_cityscapes_like(work / "scenes", frames or SYNTH_FRAMES, size)
        info = from_cityscapes(work / "scenes", work / "input.bag", split="val", storage="mcap", rate_hz=5.0)
        bag, pose, desc = work / "input.bag", info["camera_pose"], "procedural scenes made by fornet (synth)"
    else:
        p = Path(inp)
        if (p / "metadata.yaml").is_file():
            bag = p
        elif (p / "leftImg8bit").is_dir():
            work.mkdir(parents=True, exist_ok=True)
            info = from_cityscapes(p, work / "input.bag", split=next(iter(sorted(os.listdir(p / "leftImg8bit")))),
                                   limit=frames, rate_hz=5.0)
            bag, pose = work / "input.bag", info["camera_pose"]
        elif p.is_dir():
            work.mkdir(parents=True, exist_ok=True)
            from_folder(p, work / "input.bag", limit=frames, rate_hz=5.0)
            bag = work / "input.bag"
        else:
            raise BagError(f"--input must be 'clip', 'synth', a rosbag2 folder, a Cityscapes root or an image "
                           f"folder: {p}")
    reader = open_reader(bag)
    try:
        cams = bag_cameras(reader)
        topics = {c.topic.strip("/"): c.msgtype for c in reader.connections}
    finally:
        reader.close()
    if not cams:
        raise BagError(f"{bag}: no <cam>/image_raw topic (topics: {sorted(topics)})")
    cam = cams[0]
    compressed = topics.get(f"{cam}/image_raw/compressed") == "sensor_msgs/msg/CompressedImage" \
        and f"{cam}/image_raw" not in topics
    return DemoInput(Path(bag), cam, compressed, tuple(pose) if pose else None, desc, is_clip)


def auto_rate(stamps: list[int]) -> float:
    """Playback speed: frames about 1 / PLAYBACK_FPS s apart in wall time, never slower than recorded."""
    if len(stamps) < 2:
        return 1.0
    dt = float(np.median(np.diff(sorted(stamps)))) / 1e9
    return max(1.0, round(dt * PLAYBACK_FPS, 3))


class _Recording:
    """A Segmenter that keeps every result (evaluate() scores; the report outlines ``selected``)."""

    def __init__(self, seg):
        self.seg, self.results = seg, []

    def __getattr__(self, name):
        return getattr(self.seg, name)

    def __call__(self, img):
        r = self.seg(img)
        self.results.append(r)
        return r


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

    _check_demo_classes(checkpoint)
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

    diag = _last_diagnostics(got.get("diagnostics", []), cam)
    say("scoring: the node's labels against the ground truth, and the same checkpoint run here (fornet eval)")
    order = [s for s, _, _ in played]
    segmented = [s for s in order if s in labels]
    reference = _reference(checkpoint, [(s, *inputs[s]) for s in segmented])
    if "checkpoint" in reference:
        reference["checkpoint"] = ckpt_label
    selected = reference.pop("selected", {})
    classes = reference.pop("classes", None)
    from ..training.metrics import SegmentationMetrics
    metrics = SegmentationMetrics(len(classes), classes) if classes else SegmentationMetrics()
    k = _float(diag.get("topk_ratio"))
    for s in segmented:
        if s not in selected and s in importance and k is not None:
            selected[s] = _threshold_topk(importance[s], k)
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
    pose = Pose.from_list(src.pose) if src.pose else _default_pose()
    timing = _timing(diag, sent_t, recv_t.get("labels", {}), order, rate, play_s)
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
    scorer, truth_fusers = _costmap_scorer(layer_dict, classes, cam_info, pose), {}
    if scorer is not None:
        for s in segmented:
            if inputs[s][1] is not None:
                _, truth_fusers[s] = scorer.update(labels[s], inputs[s][1])
    fp = scorer.compute()["pixel_spans_cells_beyond_m"] if scorer is not None else None
    summary["costmap"] = _costmap_summary(layer_dict, scorer, got, labels, segmented)
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
        _write(images / f"{name}_overlay.png", with_legend(ov, [labels[s], gt]))
        imp = importance_view(rgb, importance[s], selected.get(s), bar=False) if s in importance else None
        if imp is not None:
            _write(images / f"{name}_importance.png", importance_view(rgb, importance[s], selected.get(s)))
        truth = overlay(rgb, gt) if gt is not None else None
        err = error_map(rgb, labels[s], gt) if gt is not None else None
        if gt is not None:
            _write(images / f"{name}_truth.png", with_legend(truth, gt))
            _write(images / f"{name}_error.png", err)
        g = got.get("grid_combined", {}).get(s)
        if g is not None:
            _write(images / f"{name}_costmap.png", grid_image(g, pose, cam_info, scale=1, footprint_m=fp))
        if row is shown:
            tiles = [ov, imp, truth, err]
            below = [legend_panel(sorted(set(np.unique(labels[s]).tolist()) |
                                         (set(np.unique(gt).tolist()) if gt is not None else set())), 4 * rgb.shape[1])]
            if s in importance:
                from ..tools.visuals import importance_colors
                _, lo, hi = importance_colors(importance[s])
                below.append(colorbar(rgb.shape[1], lo, hi))
    summary["costmap_layers"], summary["costmap_frame"] = _write_layers(images, got, grid_layers, shown["stamp"],
                                                                        pose, cam_info, fp)
    if summary["costmap_frame"] is not None and summary["costmap_frame"] in truth_fusers:
        _write(images / "costmap_truth_combined.png",
               grid_image((truth_fusers[summary["costmap_frame"]].grids()["combined"], scorer.grid), pose, cam_info,
                          footprint_m=fp))
    summary["animation"] = write_animation(images, [(r["t_s"], overlay(inputs[r["stamp"]][0], labels[r["stamp"]]))
                                                    for r in frames_rows if r["segmented"]])
    summary["montage_frame"] = write_montage(images, shown["name"], tiles or [], below or [])
    summary["wall_s"] = round(time.monotonic() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_index(out, summary)
    return summary


# -- node numbers ---------------------------------------------------------------------------------

def _float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _last_diagnostics(arrays, cam) -> dict:
    for arr in reversed(arrays):
        for st in arr.status:
            if st.name.endswith(f": {cam}") or st.name.endswith(cam):
                return {"level": int.from_bytes(st.level, "little") if isinstance(st.level, bytes) else int(st.level),
                        "message": st.message, **{kv.key: kv.value for kv in st.values}}
    return {}


def _pct(values, q):
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def _timing(diag: dict, sent_t: list, recv: dict, order: list, rate: float, play_s: float) -> dict:
    """Rates, latencies and drops. Wall-clock numbers are all on this process's monotonic clock or
    the node's; the input age is on the node's ROS clock (= the bag's /clock)."""
    e2e = [(recv[s] - sent_t[i]) * 1000 for i, s in enumerate(order[:len(sent_t)]) if s in recv]
    rx = sorted(recv.values())
    drops = {k: int(diag[k]) for k in ("dropped_overwritten", "dropped_stale", "dropped_future_stamp", "bad_messages",
                                       "lost_in_transport", "errors") if str(diag.get(k, "")).isdigit()}
    return {
        "input_hz": round((len(sent_t) - 1) / (sent_t[-1] - sent_t[0]), 2) if len(sent_t) > 1 else None,
        "output_hz": round((len(rx) - 1) / (rx[-1] - rx[0]), 2) if len(rx) > 1 else None,
        "e2e_latency_ms_p50": _pct(e2e, 50), "e2e_latency_ms_p95": _pct(e2e, 95),
        "node_latency_ms_p50": _float(diag.get("latency_ms_p50")),
        "node_latency_ms_p95": _float(diag.get("latency_ms_p95")),
        "inference_ms_p50": _float(diag.get("inference_ms_p50")),
        "input_age_ms_p50_bag_clock": _float(diag.get("input_age_ms_p50")),
        "node_received": int(diag["received"]) if str(diag.get("received", "")).isdigit() else None,
        "node_processed": int(diag["processed"]) if str(diag.get("processed", "")).isdigit() else None,
        "drops": drops, "not_segmented": len(sent_t) - len(e2e), "rate": rate, "play_s": round(play_s, 2),
    }


def _check_demo_classes(checkpoint) -> None:
    """The demo scores against Cityscapes train-ID ground truth: a foreign ONNX model with its own
    classes (fornet_ros.inference.model_description) would be scored on IDs that mean other things."""
    if not checkpoint or not str(checkpoint).endswith(".onnx"):
        return
    from ..classes import CITYSCAPES_CLASSES
    from ..errors import FornetError
    from ..inference.export import ONNX_FORMAT, onnx_properties
    from ..inference.model_description import read_description
    if onnx_properties(checkpoint).get("fornet_format") == ONNX_FORMAT:
        return
    classes = read_description(checkpoint).meta.classes
    if tuple(classes) != CITYSCAPES_CLASSES:
        raise FornetError(f"the demo scores against Cityscapes train IDs, but {checkpoint} has its own classes "
                          f"{list(classes)}: run it with `fornet predict`, `fornet eval` on data in its classes, or "
                          "the node (docs/deploy.md)")


# -- reference: the same checkpoint here, as `fornet eval` runs it ------------------------------------

def _reference(checkpoint, frames) -> dict:
    """evaluate(Segmenter(checkpoint)) on (stamp, rgb, gt) frames: its metrics, classes, and the
    ``selected`` mask of each frame; {'error': why} when the checkpoint does not load here."""
    from ..training.evaluation import evaluate
    from ..inference import Segmenter
    try:
        seg = Segmenter.from_checkpoint(checkpoint)
    except Exception as e:  # noqa: BLE001 - allow_untrained: the node runs random weights, nothing to compare
        return {"error": f"{type(e).__name__}: {e}"}
    rec = _Recording(seg)
    res = evaluate(rec, [(rgb, gt) for _, rgb, gt in frames], progress=False)
    return {"checkpoint": str(checkpoint or "packaged default"), "metrics": res if res.get("scored") else None,
            "frames": len(frames), "classes": list(seg.classes),
            "selected": {s: r.selected for (s, _, _), r in zip(frames, rec.results)}}


def _threshold_topk(imp: np.ndarray, k: float) -> np.ndarray:
    """Pixels whose importance is among the top fraction ``k`` (the node's K) of the image."""
    if k <= 0:
        return np.zeros(imp.shape, bool)
    return imp >= np.quantile(imp, max(0.0, 1.0 - k))


def _costmap_scorer(layer_dict: dict, classes, cam_info: dict | None, pose: Pose):
    """The :class:`~fornet_ros.mapping.costmap_score.CostmapScorer` of the node's grid, camera and layers
    (None without CameraInfo or with layers that do not fit the model's classes)."""
    from ..tools.clip import camera_model
    from ..mapping.costmap_score import CostmapScorer
    from ..mapping import LayerConfig
    if not cam_info:
        return None
    try:
        cfg = LayerConfig.from_dict(layer_dict, classes or CITYSCAPES_CLASSES)
        model = camera_model(cam_info)
    except GeometryError as e:
        say(f"no costmap score: {e}")
        return None
    return CostmapScorer(model, pose, cfg, EVAL_GRID, EVAL_MAX_RANGE)


def _costmap_summary(layer_dict: dict, scorer, got: dict, labels: dict, segmented: list) -> dict:
    """The grid, the layers (classes, cost) and, with a scorer, the costmap score and how many
    cells of the node's published combined grids equal the local projection of its labels."""
    g = EVAL_GRID
    out = {"grid": {"resolution": g.resolution, "width": g.width, "height": g.height, "origin": list(g.origin),
                    "max_range": EVAL_MAX_RANGE},
           "ground_classes": list(layer_dict.get("ground_classes", [])),
           "obstacle_classes": list(layer_dict.get("obstacle_classes", [])),
           "layers": [{"name": str(l["name"]), "classes": list(l["classes"]), "cost": int(l["cost"])}
                      for l in layer_dict["layers"]]}
    if scorer is None:
        return out
    score = scorer.compute()
    out["pixel_spans_cells_beyond_m"] = score.pop("pixel_spans_cells_beyond_m")
    out["score"] = score if score["frames"] else None
    same = total = 0
    for s in segmented:
        msg = got.get("grid_combined", {}).get(s)
        if msg is None:
            continue
        local = scorer.fuse(labels[s]).grids()["combined"]
        node = np.asarray(msg.data, np.int8).reshape(msg.info.height, msg.info.width)
        if node.shape == local.shape:
            same += int(np.count_nonzero(node == local))
            total += node.size
    out["node_grid_agreement"] = same / total if total else None
    return out


def _default_pose() -> Pose:
    from ..node.params import CAMERA_POSE
    return Pose.from_list(CAMERA_POSE.default)
