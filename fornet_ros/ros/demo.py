"""``fornet demo``: the whole pipeline through real DDS, with a report.

Takes the packaged real clip (CamVid 0006R0, :mod:`fornet_ros.clip`; the default), procedural scenes
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
takes ``selected`` from it and scores it with :func:`fornet_ros.evaluation.evaluate`: that reference
mIoU is reported beside the node's (both on the same decoded frames, so they agree). When the
checkpoint cannot be loaded here (``allow_untrained``), the outline is the node's importance image
thresholded at its K-th quantile instead.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..bags import BagError, bag_cameras, from_cityscapes, from_folder, iter_frames, open_reader, read_camera_info
from ..classes import IGNORE_INDEX, colorize
from ..geometry import GeometryError, Pose, read_layer_config
from ..images import to_mono8
from ..frames import stamp_ns
from .processes import Spinner, isolated_env, start_node, stop_node

PLAYBACK_FPS = 2.0  # automatic --rate: about this many frames per wall-clock second (never slower than recorded)
SYNTH_FRAMES = 12  # frames generated for --input synth when --frames is not given
ANIMATION_WIDTH = 320  # px; the animated overlay is downscaled to this width
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
        from ..clip import CLIP_NAME, DEMO_CAMERA_POSE, demo_clip_path
        bag, pose, desc, is_clip = demo_clip_path(), DEMO_CAMERA_POSE, f"packaged real clip {CLIP_NAME}", True
        if not (bag / "metadata.yaml").is_file():
            raise BagError(f"the packaged clip is missing: {bag}")
    elif inp == "synth":
        from ..synthetic import write_cityscapes_like
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
        grid_layers = ["combined"] + [str(layer["name"]) for layer in read_layer_config(costmap_config)["layers"]]
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
    params = [f"cameras:=[{cam}]", "grid_width:=300", "grid_height:=300", "grid_origin:=[0.0, -15.0]",
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
    from ..metrics import SegmentationMetrics
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
    for row in frames_rows:
        s = row["stamp"]
        if s not in labels:
            continue
        rgb, gt = inputs[s]
        name = row["name"]
        _write(images / f"{name}_overlay.png", overlay(rgb, labels[s]))
        if s in importance:
            _write(images / f"{name}_importance.png", importance_view(rgb, importance[s], selected.get(s)))
        if gt is not None:
            _write(images / f"{name}_truth.png", overlay(rgb, gt))
            _write(images / f"{name}_error.png", error_map(rgb, labels[s], gt))
        g = got.get("grid_combined", {}).get(s)
        if g is not None:
            _write(images / f"{name}_costmap.png", grid_image(g, pose, cam_info, scale=1))
    shown = montage_frame(frames_rows)
    summary["costmap_layers"], summary["costmap_frame"] = _write_layers(images, got, grid_layers, shown["stamp"],
                                                                        pose, cam_info)
    summary["animation"] = write_animation(images, [(r["t_s"], overlay(inputs[r["stamp"]][0], labels[r["stamp"]]))
                                                    for r in frames_rows if r["segmented"]])
    summary["montage_frame"] = write_montage(images, shown["name"])
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
    classes (fornet_ros.model_description) would be scored on IDs that mean other things."""
    if not checkpoint or not str(checkpoint).endswith(".onnx"):
        return
    from ..classes import CITYSCAPES_CLASSES
    from ..errors import FornetError
    from ..export import ONNX_FORMAT, onnx_properties
    from ..model_description import read_description
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
    from ..evaluation import evaluate
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


def _default_pose() -> Pose:
    from ..node_config import CAMERA_POSE
    return Pose.from_list(CAMERA_POSE.default)


# -- images ---------------------------------------------------------------------------------------

def _write(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))


def overlay(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels in their palette colours over the image, half and half (void: the image dimmed)."""
    return (rgb * 0.5 + colorize(labels) * 0.5).astype(np.uint8)


def importance_view(rgb: np.ndarray, imp: np.ndarray, selected: np.ndarray | None) -> np.ndarray:
    """Importance (inferno) over the image; the selected regions outlined in cyan."""
    heat = cv2.applyColorMap(imp, cv2.COLORMAP_INFERNO)[:, :, ::-1]
    view = (rgb * 0.4 + heat * 0.6).astype(np.uint8)
    if selected is not None and selected.shape == imp.shape and selected.any():
        contours, _ = cv2.findContours(selected.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(view, contours, -1, (0, 255, 255), max(1, rgb.shape[1] // 400))
    return view


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


def grid_image(g, pose: Pose, cam_info: dict | None, scale: int = 2) -> np.ndarray:
    """An OccupancyGrid as RGB, x (forward) up and y (left) to the left; grey unknown, white free,
    black cost 100; the camera (orange dot), its horizontal field of view (orange lines) and range
    ticks every 10 m (blue, on the left edge)."""
    h, w, res = g.info.height, g.info.width, g.info.resolution
    ox, oy = g.info.origin.position.x, g.info.origin.position.y
    vals = np.asarray(g.data, np.int8).reshape(h, w)
    img = np.where(vals < 0, 128, 255 - np.clip(vals, 0, 100).astype(np.int32) * 255 // 100).astype(np.uint8)
    img = np.rot90(img, 1)[:, ::-1]  # rows: x from far (top) to near; columns: y from left (+y) to right
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    view = np.ascontiguousarray(np.repeat(img[:, :, None], 3, 2))

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
    return view


def _write_layers(images: Path, got: dict, layers: list, stamp: int, pose, cam_info):
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
        _write(images / f"costmap_{layer}.png", grid_image(g, pose, cam_info))
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


def write_montage(images: Path, name: str) -> str | None:
    """images/montage.png: frame ``name``'s overlay, importance (selected outlined), ground truth and
    error map beside the combined costmap (with the field of view) at that frame."""
    tiles = [cv2.imread(str(images / f"{name}_{k}.png")) for k in ("overlay", "importance", "truth", "error")]
    tiles = [t for t in tiles if t is not None]
    if not tiles:
        return None
    h = tiles[0].shape[0]
    g = cv2.imread(str(images / "costmap_combined.png"))
    if g is not None:
        tiles.append(cv2.resize(g, (int(g.shape[1] * h / g.shape[0]), h), interpolation=cv2.INTER_AREA))
    sep = np.full((h, 6, 3), 255, np.uint8)
    row = [tiles[0]]
    for t in tiles[1:]:
        row += [sep, t]
    cv2.imwrite(str(images / "montage.png"), np.concatenate(row, 1))
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
                             f"fornet_ros.evaluation.evaluate): mIoU {ref['metrics']['miou']:.4f}; difference "
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
    text["selected"] = (f"Importance: the selector's region importance (inferno); cyan outlines: the regions refined "
                        f"by the Top-K branches, from the {s['selected_regions']}. Error map: red where the "
                        "labels differ from the ground truth, dark blue void (not scored), grey correct.")
    text["costmap"] = ("Semantic costmap (x forward up, y left; grey unknown, white free, black cost 100; orange: "
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


def write_index(out: Path, s: dict) -> None:
    text = report_text(s)
    files = {c for _, cells in _per_frame_images(s) for c in cells if (out / c).is_file()}
    md = ["# fornet_ros demo report", "", *(f"{text[k]}\n" for k in ("input", "metrics", "reference", "timing")
                                            if k in text)]
    md += [text["montage"], "", "![montage: labels, importance (selected regions outlined), ground truth, error map, "
           "combined costmap](images/montage.png)", ""]
    if s.get("animation"):
        md += [f"Animated overlay of the clip: [{s['animation']}]({s['animation']})", "",
               f"![animated overlay]({s['animation']})" if s["animation"].endswith(".gif") else "", ""]
    md += ["## Frames", "", text["selected"], "",
           "| frame | bag time | pixel acc. | e2e ms | labels (overlay) | importance | ground truth | error | costmap |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r, cells in _per_frame_images(s):
        md.append(f"| {r['name']} | {r['t_s']:.1f} s | {_fmt(r.get('pixel_accuracy'), 3)} | {_fmt(r.get('e2e_ms'), 0)} | "
                  + " | ".join(f"![]({c})" if c in files else "" for c in cells) + " |")
    md += ["", "## Semantic costmap layers", "", text["costmap"], ""]
    md += [f"**{g}**: ![]({f'images/costmap_{g}.png'})" for g in s["costmap_layers"]]
    (out / "index.md").write_text("\n".join(md) + "\n")

    esc = lambda v: str(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    html = ["<!doctype html><meta charset=utf-8><title>fornet_ros demo</title>",
            "<style>body{font-family:sans-serif;max-width:1600px}td{vertical-align:top;font-size:13px}"
            "img.f{width:240px}</style><body>", "<h1>fornet_ros demo report</h1>"]
    html += [f"<p>{esc(text[k])}</p>" for k in ("input", "metrics", "reference", "timing") if k in text]
    html += [f"<p>{esc(text['montage'])}</p>", "<p><img src='images/montage.png' style='max-width:100%'></p>"]
    if s.get("animation"):
        a = s["animation"]
        html.append(f"<p><img src='{a}'></p>" if a.endswith(".gif") else
                    f"<p><video src='{a}' controls loop autoplay muted></video></p>")
    html += ["<h2>Frames</h2>", f"<p>{esc(text['selected'])}</p>", "<table><tr><th>frame</th><th>labels</th>"
             "<th>importance</th><th>ground truth</th><th>error</th><th>costmap</th></tr>"]
    for r, cells in _per_frame_images(s):
        html.append(f"<tr><td>{r['name']}<br>{r['t_s']:.1f} s<br>acc {_fmt(r.get('pixel_accuracy'), 3)}<br>"
                    f"e2e {_fmt(r.get('e2e_ms'), 0)} ms</td>"
                    + "".join(f"<td><img class=f src='{c}'></td>" if c in files else "<td></td>" for c in cells)
                    + "</tr>")
    html += ["</table>", "<h2>Semantic costmap layers</h2>", f"<p>{esc(text['costmap'])}</p>", "<div>"]
    html += [f"<div style='display:inline-block;margin:4px'><b>{esc(g)}</b><br><img src='images/costmap_{g}.png' "
             "width=300></div>" for g in s["costmap_layers"]]
    html.append("</div><p>Numbers: <a href='summary.json'>summary.json</a>.</p>")
    (out / "index.html").write_text("\n".join(html))
