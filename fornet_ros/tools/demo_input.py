"""``fornet demo``'s input and scoring, without ROS: the input (the packaged clip, procedural scenes, a bag,
a Cityscapes root or an image folder, made a rosbag2 folder), the playback rate, the node's numbers
read from /diagnostics, the reference run of the same checkpoint here and the costmap score.
:mod:`fornet_ros.ros.demo` drives the node with them; :mod:`.demo_report` renders the report."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classes import CITYSCAPES_CLASSES, IGNORE_INDEX
from ..mapping import GeometryError, Pose
from ..mapping.costmap_score import EVAL_GRID, EVAL_MAX_RANGE
from .bags import BagError, bag_cameras, from_cityscapes, from_folder, open_reader

PLAYBACK_FPS = 2.0  # automatic --rate: about this many frames per wall-clock second (never slower than recorded)
SYNTH_FRAMES = 12  # frames generated for --input synth when --frames is not given


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
    self_mask_rows: int = 0  # the robot's own pixels: this many rows from the bottom (the node's self_mask_rows)

    @property
    def prediction_lut(self):
        """The clip's labels are CamVid's classes (as their one-to-one train IDs): predictions are
        mapped into them before scoring; other inputs are labelled in the 19 classes."""
        if not self.is_clip:
            return None
        from ..classes import LABEL_SPACES
        from .clip import LABEL_SPACE
        return LABEL_SPACES[LABEL_SPACE].prediction_lut()


def prepare_input(inp: str | None, work: Path, frames: int | None, size) -> DemoInput:
    """``inp``: None or 'clip' (the packaged CamVid clip), 'synth' (procedural scenes), a rosbag2
    folder, a Cityscapes root or an image folder (written to ``work/input.bag``)."""
    pose, desc, is_clip = None, str(inp), False
    if inp in (None, "clip"):
        from .clip import CLIP_NAME, DEMO_CAMERA_POSE, demo_clip_path
        bag, pose, desc, is_clip = demo_clip_path(), DEMO_CAMERA_POSE, f"packaged real clip {CLIP_NAME}", True
        if not (bag / "metadata.yaml").is_file():
            raise BagError(f"the packaged clip is missing: {bag}")
    elif inp == "synth":
        from .synthetic import write_cityscapes_like
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


# -- node numbers ---------------------------------------------------------------------------------

def as_float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


RATE_KEYS = ("input_hz", "processed_hz")  # the node's rates over its last report period, not totals


def _camera_status(arr, cam):
    for st in arr.status:
        if st.name.endswith(f": {cam}") or st.name.endswith(cam):
            return st
    return None


def node_diagnostics(reports, cam, playing: tuple[float, float] | None = None) -> dict:
    """The node's last /diagnostics status of ``cam`` (level, message, values) from ``reports``
    [(receipt time, DiagnosticArray)]: its counters count every frame. Its rates (RATE_KEYS) cover
    only its last report period, which after playback is idle (0.00 Hz at level OK says nothing):
    they are replaced by their mean over the reports received while ``playing`` (first image sent,
    last image sent + one report period), ``rates_over`` saying so; None when no report fell there."""
    last = None
    during = {k: [] for k in RATE_KEYS}
    for t, arr in reports:
        st = _camera_status(arr, cam)
        if st is None:
            continue
        last = st
        values = {kv.key: kv.value for kv in st.values}
        if playing is not None and playing[0] <= t <= playing[1]:
            for k in RATE_KEYS:
                if as_float(values.get(k)) is not None:
                    during[k].append(as_float(values[k]))
    if last is None:
        return {}
    level = int.from_bytes(last.level, "little") if isinstance(last.level, bytes) else int(last.level)
    out = {"level": level, "message": last.message, **{kv.key: kv.value for kv in last.values}}
    if playing is not None:
        n = len(during[RATE_KEYS[0]])
        for k in RATE_KEYS:
            out[k] = f"{sum(during[k]) / len(during[k]):.2f}" if during[k] else None
        out["rates_over"] = f"playback: mean of {n} report(s)" if n else "playback: no report received during it"
    return out


def _pct(values, q):
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def demo_timing(diag: dict, sent_t: list, recv: dict, order: list, rate: float, play_s: float) -> dict:
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
        "node_latency_ms_p50": as_float(diag.get("latency_ms_p50")),
        "node_latency_ms_p95": as_float(diag.get("latency_ms_p95")),
        "inference_ms_p50": as_float(diag.get("inference_ms_p50")),
        "input_age_ms_p50_bag_clock": as_float(diag.get("input_age_ms_p50")),
        "node_received": int(diag["received"]) if str(diag.get("received", "")).isdigit() else None,
        "node_processed": int(diag["processed"]) if str(diag.get("processed", "")).isdigit() else None,
        "drops": drops, "not_segmented": len(sent_t) - len(e2e), "rate": rate, "play_s": round(play_s, 2),
    }


def snapshot_checkpoint(checkpoint):
    """(checkpoint to use, its sha256): one copy for the node and the reference run here, so a checkpoint
    that a training run rewrites meanwhile cannot give the two different weights."""
    if not (checkpoint and Path(checkpoint).is_file()):
        return checkpoint, None
    import hashlib
    import shutil
    sha = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    if str(checkpoint).endswith(".onnx"):  # an ONNX model may have external data beside it
        return checkpoint, sha
    import atexit
    import tempfile
    snap = Path(tempfile.mkdtemp(prefix="fornet_demo_ckpt_"))
    atexit.register(shutil.rmtree, snap, True)
    return str(shutil.copy2(checkpoint, snap / Path(checkpoint).name)), sha


def check_demo_classes(checkpoint) -> None:
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

def reference_run(checkpoint, frames, prediction_lut=None) -> dict:
    """evaluate(Segmenter(checkpoint)) on (stamp, rgb, gt) frames: its metrics, classes, and the
    ``selected`` mask of each frame; {'error': why} when the checkpoint does not load here.
    ``prediction_lut``: predictions mapped into the ground truth's classes (the clip: CamVid's)."""
    from ..inference import Segmenter
    from ..training.evaluation import evaluate
    try:
        seg = Segmenter.from_checkpoint(checkpoint)
    except Exception as e:  # noqa: BLE001 - allow_untrained: the node runs random weights, nothing to compare
        return {"error": f"{type(e).__name__}: {e}"}
    rec = _Recording(seg)
    res = evaluate(rec, [(rgb, gt) for _, rgb, gt in frames], progress=False, prediction_lut=prediction_lut)
    return {"checkpoint": str(checkpoint or "packaged default"), "metrics": res if res.get("scored") else None,
            "frames": len(frames), "classes": list(seg.classes),
            "selected": {s: r.selected for (s, _, _), r in zip(frames, rec.results)}}


def score_frames(order: list, inputs: dict, labels: dict, importance: dict, checkpoint, ckpt_label, diag: dict,
                 sent_t: list, recv: dict, prediction_lut=None):
    """The node's ``labels`` (by stamp) against the ground truth of ``inputs`` {stamp: (rgb, gt)}, and
    the same checkpoint run here (:func:`reference_run`); the frames in bag ``order``, the i-th published
    at ``sent_t[i]`` and labelled at ``recv[stamp]`` (monotonic s). Returns (per-frame rows, metrics or
    None, the reference run, the selected regions by stamp, the model's classes). ``prediction_lut``
    maps the labels into the ground truth's classes first (the clip's CamVid labels: a truck on a
    CamVid car is right), as ``fornet bag eval`` and ``fornet eval`` do."""
    from ..training.metrics import SegmentationMetrics
    segmented = [s for s in order if s in labels]
    reference = reference_run(checkpoint, [(s, *inputs[s]) for s in segmented], prediction_lut)
    if "checkpoint" in reference:
        reference["checkpoint"] = ckpt_label
    selected, classes = reference.pop("selected", {}), reference.pop("classes", None)
    metrics = SegmentationMetrics(len(classes), classes) if classes else SegmentationMetrics()
    k = as_float(diag.get("topk_ratio"))
    for s in segmented:
        if s not in selected and s in importance and k is not None:
            selected[s] = threshold_topk(importance[s], k)
    rows = []
    for i, s in enumerate(order):
        rgb, gt = inputs[s]
        row = {"name": f"frame_{i:03d}", "stamp": s, "t_s": round((s - order[0]) / 1e9, 3),
               "segmented": s in labels, "scored": False}
        if i < len(sent_t) and s in recv:
            row["e2e_ms"] = round((recv[s] - sent_t[i]) * 1000, 1)
        if s in labels and gt is not None:
            pred = labels[s] if prediction_lut is None else prediction_lut[labels[s]]
            metrics.update(gt, pred, selected.get(s) if reference.get("metrics") else None)
            valid = gt != IGNORE_INDEX
            row.update(scored=True, pixel_accuracy=round(float(np.mean(pred[valid] == gt[valid])), 4)
                       if valid.any() else None)
        rows.append(row)
    m = metrics.compute() if any(r["scored"] for r in rows) else None
    if m and reference.get("metrics"):
        reference["miou_difference"] = abs(m["miou"] - reference["metrics"]["miou"])
    return rows, m, reference, selected, classes


def threshold_topk(imp: np.ndarray, k: float) -> np.ndarray:
    """Pixels whose importance is among the top fraction ``k`` (the node's K) of the image."""
    if k <= 0:
        return np.zeros(imp.shape, bool)
    return imp >= np.quantile(imp, max(0.0, 1.0 - k))


def costmap_scorer(layer_dict: dict, classes, cam_info: dict | None, pose: Pose):
    """The :class:`~fornet_ros.mapping.costmap_score.CostmapScorer` of the node's grid, camera and layers
    (None without CameraInfo or with layers that do not fit the model's classes)."""
    from ..mapping import LayerConfig
    from ..mapping.costmap_score import CostmapScorer
    from .clip import camera_model
    if not cam_info:
        return None
    try:
        cfg = LayerConfig.from_dict(layer_dict, classes or CITYSCAPES_CLASSES)
        model = camera_model(cam_info)
    except GeometryError as e:
        say(f"no costmap score: {e}")
        return None
    return CostmapScorer(model, pose, cfg, EVAL_GRID, EVAL_MAX_RANGE)


def costmap_summary(layer_dict: dict, scorer, got: dict, labels: dict, segmented: list) -> dict:
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


def default_pose() -> Pose:
    from ..node.params import CAMERA_POSE
    return Pose.from_list(CAMERA_POSE.default)
