"""The ROS-facing commands of ``fornet``: ``bag`` (its ``play`` publishes with rclpy), ``demo`` and
``bench-node`` (both start the node over DDS). Pure work is delegated to the core modules."""

from __future__ import annotations

import json
from pathlib import Path

from ..inference import add_model_arguments, segmenter_from_args


def add_bag_arguments(p):
    p.description = ("rosbag2 tools (pure-Python rosbags; no ROS distro needed). Bags hold <cam>/image_raw, "
                     "<cam>/camera_info and <cam>/ground_truth/labels (mono8 train IDs).")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = sub.add_parser("from-cityscapes", help="Cityscapes leftImg8bit/ + gtFine/ + camera/ -> bag")
    c.add_argument("root", help="Cityscapes root (holds leftImg8bit/, gtFine/, camera/)")
    c.add_argument("--split", default="val", help="split folder (train, val, test)")
    c.add_argument("--city", default=None, help="only this city (default: all)")
    c.add_argument("--sequence", action="store_true", help="read leftImg8bit_sequence/ (ground truth where it exists)")
    c.add_argument("--rate", type=float, default=17.0, help="frame rate of the stamps (Hz)")
    f = sub.add_parser("from-folder", help="an image folder (+ labels) -> bag, e.g. CamVid")
    f.add_argument("images", help="image folder (.png, .jpg)")
    f.add_argument("--labels", default=None, help="label folder (same file stems, .png)")
    f.add_argument("--mapping", default="trainid", choices=["trainid", "camvid", "cityscapes"],
                   help="what label values mean (mapped to Cityscapes train IDs)")
    f.add_argument("--rate", type=float, default=10.0, help="frame rate of the stamps (Hz)")
    for q in (c, f):
        q.add_argument("--out", required=True, help="output bag folder")
        q.add_argument("--limit", type=int, default=None, help="at most N frames")
        q.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"], help="rosbag2 storage plugin")
        q.add_argument("--compressed", action="store_true", help="CompressedImage (png) instead of Image")
        q.add_argument("--camera", default="camera", help="camera namespace of the topics")
    pl = sub.add_parser("play", help="publish a bag with rclpy at recorded timing")
    pl.add_argument("bag", help="a rosbag2 folder (or its .mcap / .db3 file)")
    pl.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    pl.add_argument("--loop", action="store_true", help="start again at the end")
    pl.add_argument("--clock", action="store_true", help="publish /clock (for use_sim_time)")
    pl.add_argument("--topics", nargs="*", default=None, help="only these topics (default: all)")
    pl.add_argument("--wait-for-subscribers", type=float, default=5.0, metavar="SECONDS",
                    help="wait up to this long for subscribers on the image topics before playing")
    add_playback_arguments(pl, "recorded")
    e = sub.add_parser("eval", help="segment every frame and score against <cam>/ground_truth/labels: the "
                       "labels, and the semantic costmap they make")
    e.add_argument("bag", help="a rosbag2 folder, or 'clip' (the packaged CamVid 0006R0 clip and its camera pose)")
    e.add_argument("--camera", default=None, help="only this camera namespace (default: every camera)")
    e.add_argument("--limit", type=int, default=None, help="at most N frames")
    e.add_argument("--boundary-px", type=int, default=3, help="boundary IoU: band (px) around label edges")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--camera-pose", type=float, nargs=6, default=None, metavar=("X", "Y", "Z", "ROLL", "PITCH", "YAW"),
                   help="the camera's body pose in base_link for the costmap score (m, rad; default: the clip's "
                        "pose for 'clip', else the node's camera_pose default)")
    e.add_argument("--costmap-config", default=None, help="layer YAML of the costmap score (default: built-in layers)")
    e.add_argument("--no-costmap", action="store_true", help="score the labels only (no costmap score)")
    e.add_argument("--label-space", default=None, choices=["camvid"],
                   help="the ground truth is this dataset's coarser classes (as their train IDs): predictions are "
                        "mapped into them first, e.g. truck -> car (default: 'camvid' for 'clip', else exact)")
    add_model_arguments(e)
    i = sub.add_parser("info", help="topics, types and message counts")
    i.add_argument("bag", help="a rosbag2 folder (or its .mcap / .db3 file)")
    x = sub.add_parser("export", help="camera frames -> PNG files (and ground truth labels where the bag has them), "
                       "e.g. to run fornet predict on")
    x.add_argument("bag", help="a rosbag2 folder, or 'clip' (the packaged CamVid 0006R0 clip)")
    x.add_argument("--out", required=True, help="new or empty folder: images/<cam>/*.png, labels/<cam>/*.png (mono8 "
                   "train IDs) and classes.yaml (with labels: a fornet eval --dataset folder dataset, split <cam>)")
    x.add_argument("--camera", default=None, help="only this camera namespace (default: every camera)")
    x.add_argument("--limit", type=int, default=None, help="at most N frames per camera")


def add_playback_arguments(p, default: str):
    p.add_argument("--playback", default=default, choices=["paced", "recorded"],
                   help=f"recorded: publish at the recorded timing x --rate, as a camera would (a slower node keeps "
                        f"its newest frame and drops the rest); paced: also wait, before each image, until the node "
                        f"has answered the previous one (<cam>/semantic/labels with its stamp), so every frame is "
                        f"segmented, at the rate the node sustains (default: {default})")
    p.add_argument("--answer-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="paced: publish the next image anyway after waiting this long for an answer")


def run_bag(a):
    from ..tools import bags
    if a.action == "from-cityscapes":
        print(json.dumps(bags.from_cityscapes(a.root, a.out, a.split, a.city, a.limit, a.storage, a.compressed,
                                              a.camera, a.sequence, a.rate)))
    elif a.action == "from-folder":
        print(json.dumps(bags.from_folder(a.images, a.out, a.labels, a.mapping, a.limit, a.storage, a.compressed,
                                          a.camera, a.rate)))
    elif a.action == "export":
        from ..tools.bag_export import export_frames
        from ..tools.clip import demo_clip_path
        print(json.dumps(export_frames(demo_clip_path() if a.bag == "clip" else a.bag, a.out, a.camera, a.limit)))
    elif a.action == "info":
        r = bags.open_reader(a.bag)
        try:
            print(json.dumps({"duration_s": r.duration / 1e9, "messages": r.message_count, "topics": {
                c.topic: {"type": c.msgtype, "count": c.msgcount} for c in r.connections}}, indent=2))
        finally:
            r.close()
    elif a.action == "play":
        from .bag_player import play
        n = play(a.bag, a.rate, a.loop, a.clock, a.topics, wait_for_subscribers=a.wait_for_subscribers,
                 mode=a.playback, answer_timeout=a.answer_timeout)
        print(f"published {n} messages")
    elif a.action == "eval":
        from ..mapping import Pose
        bag, pose, space = a.bag, Pose.from_list(a.camera_pose) if a.camera_pose else None, a.label_space
        if bag == "clip":
            from ..tools.clip import DEMO_CAMERA_POSE, LABEL_SPACE, demo_clip_path
            bag, pose, space = demo_clip_path(), pose or Pose.from_list(DEMO_CAMERA_POSE), space or LABEL_SPACE
        from ..tools.bag_eval import evaluate_bag
        res = evaluate_bag(segmenter_from_args(a), bag, a.camera, a.limit, a.boundary_px, progress=not a.json,
                           costmap=not a.no_costmap, camera_pose=pose, costmap_config=a.costmap_config,
                           label_space=space)
        if a.json:
            print(json.dumps(res))
            return
        print(f"{res['images']} frames ({res['scored']} with ground truth), {res['images_per_s']:.2f} frames/s, "
              f"mIoU {res.get('miou')}")
        if res.get("costmap"):
            from ..mapping.costmap_score import format_table
            print(f"costmap score (camera pose {res['costmap']['camera_pose']}; see docs/costmap.md):")
            print(format_table(res["costmap"]))
        elif "costmap_skipped" in res:
            print(f"no costmap score: {res['costmap_skipped']}")


def add_demo_arguments(p):
    p.description = ("The whole pipeline through real DDS: play the packaged real clip (CamVid 0006R0), procedural "
                     "scenes or any bag into segmentation_node (use_sim_time, /clock from the bag), record its "
                     "outputs and write a report (index.html/index.md, summary.json, images, animated overlay).")
    p.add_argument("--input", default="clip", help="clip (default: the packaged real clip), synth (procedural "
                   "scenes made by fornet), or a rosbag2 folder, Cityscapes root or image folder")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--checkpoint", default=None, help="default: the packaged model")
    p.add_argument("--frames", type=int, default=None, help="play only the first N frames (default: all; synth "
                   "generates 12)")
    p.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"), help="synth frame size")
    p.add_argument("--rate", type=float, default=None, help="bag playback speed factor (default: frames about "
                   "0.5 s apart, never slower than recorded; the clip's 3 s -> 6)")
    p.add_argument("--timeout", type=float, default=180.0)
    p.add_argument("--costmap-config", default=None, help="layer YAML (default: the built-in layers)")
    p.add_argument("--allow-untrained", action="store_true", help="run with random weights if no checkpoint loads")
    add_playback_arguments(p, "paced")


def run_demo(a):
    from ..errors import FornetError
    from .demo import replay_demo
    if (a.frames is not None and a.frames < 1) or min(a.size) < 16 or (a.rate is not None and a.rate <= 0) \
            or a.answer_timeout <= 0:
        raise FornetError(f"--frames must be >= 1, --rate and --answer-timeout > 0 and --size at least 16x16, got "
                          f"{a.frames} frames, rate {a.rate}, answer timeout {a.answer_timeout}, size {tuple(a.size)}")
    try:
        s = replay_demo(a.out, a.input, a.checkpoint, a.frames, tuple(a.size), a.rate, a.timeout,
                        allow_untrained=a.allow_untrained, costmap_config=a.costmap_config, playback=a.playback,
                        answer_timeout=a.answer_timeout)
    except RuntimeError as e:  # the node failed to start or produced nothing: say why, in one line
        raise FornetError(str(e)) from e
    ref = (s.get("reference") or {}).get("metrics") or {}
    print(json.dumps({k: s[k] for k in ("frames_in_bag", "playback", "frames_segmented", "frames_scored")} |
                     {"miou": (s["metrics"] or {}).get("miou"), "eval_miou": ref.get("miou"),
                      "report": str(Path(a.out) / "index.html")}))


def add_bench_node_arguments(p):
    p.description = ("segmentation_node end-to-end latency over DDS (publish -> labels received) vs the model alone "
                     "on the same frames, at a given input rate; above capacity it shows drops and whether latency "
                     "stays bounded.")
    p.add_argument("--checkpoint", default=None, help="checkpoint (.pt) or ONNX model; default: the packaged model")
    p.add_argument("--size", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"), help="camera image size")
    p.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"), help="network input size")
    p.add_argument("--rate", type=float, default=5.0, help="input frames per second")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each node run")
    p.add_argument("--threads", type=int, default=None, help="the node's torch CPU threads (default: torch's)")
    p.add_argument("--domain", type=int, default=77, help="ROS_DOMAIN_ID for the run")
    p.add_argument("--soak", type=float, default=None, metavar="MINUTES",
                   help="soak instead: run the node this long (costmap on, a CameraInfo per camera), sample its RSS "
                        "every --sample-s s; one JSON with the RSS slope after warm-up, frames in/out/dropped from "
                        "its /diagnostics counters and latency p50/p95 per minute")
    p.add_argument("--cameras", type=int, default=1, help="cameras publishing at --rate each (soak only)")
    p.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling period of the soak (s)")
    p.add_argument("--outputs", nargs="+", default=["labels", "all"], choices=["labels", "all"],
                   help="latency runs: only labels subscribed, and/or every image output subscribed (a frame's "
                        "latency is then publish -> its last output); one node run each, one model-alone baseline")
    g = p.add_argument_group("load step (issue #15): the latency K controller off vs on")
    g.add_argument("--load-step", type=float, default=None, metavar="SECONDS",
                   help="instead: two runs of --seconds each (fixed K, then the controller on); at this time into each "
                        "run, start --load-procs CPU burners and a second camera")
    g.add_argument("--target-ms", type=float, default=150.0, help="latency_target_ms of the controller run")
    g.add_argument("--topk", type=float, default=0.5, help="K of the fixed run and the controller's start")
    g.add_argument("--k-min", type=float, default=0.05, help="lowest K the controller may choose")
    g.add_argument("--k-max", type=float, default=1.0, help="highest K the controller may choose")
    g.add_argument("--load-procs", type=int, default=1, help="CPU-bound competitor processes started at the step")
    g.add_argument("--no-second-camera", action="store_true", help="the step is the CPU load alone")
    g.add_argument("--plot", default=None, metavar="PNG", help="latency and K vs time of both runs")


def run_bench_node(a):
    import sys

    from ..errors import FornetError
    from ..inference.checkpoint import read_checkpoint
    from .load_step import load_step, plot_load_step
    from .node_bench import bench_node
    from .soak import soak_node
    if a.rate <= 0 or a.seconds <= 0 or min(a.size) < 16:
        raise FornetError(f"--rate and --seconds must be > 0 and --size at least 16x16, got {a.rate}, {a.seconds}, "
                          f"{tuple(a.size)}")
    if a.soak is not None and (a.soak <= 0 or a.cameras < 1 or a.sample_s <= 0):
        raise FornetError(f"--soak, --cameras and --sample-s must be > 0, got {a.soak}, {a.cameras}, {a.sample_s}")
    if a.soak is None and a.cameras != 1:
        raise FornetError("--cameras other than 1 needs --soak")
    if a.checkpoint and not str(a.checkpoint).endswith(".onnx"):
        read_checkpoint(a.checkpoint)  # a clear error now rather than a node that fails to start
    input_size = tuple(a.input_size) if a.input_size else None
    if a.load_step is not None:
        if a.checkpoint and str(a.checkpoint).endswith(".onnx"):
            raise FornetError("--load-step needs a torch checkpoint: an ONNX model has K fixed at export, so the "
                              "latency controller cannot run")
        if not (0 < a.load_step < a.seconds and a.target_ms > 0 and 0 <= a.k_min <= a.k_max <= 1
                and 0 <= a.topk <= 1 and a.load_procs >= 0):
            raise FornetError("--load-step must lie inside --seconds, --target-ms > 0, 0 <= --k-min <= --k-max <= 1, "
                              "--topk in [0, 1], --load-procs >= 0")
        r = load_step(a.checkpoint, tuple(a.size), a.rate, a.seconds, a.threads, a.domain, input_size, a.target_ms,
                      a.topk, a.k_min, a.k_max, a.load_step, a.load_procs, not a.no_second_camera,
                      progress=lambda m: print(m, file=sys.stderr, flush=True))
        if a.plot:
            plot_load_step(r, a.plot)
        print(json.dumps(r, indent=2))
        return
    if a.soak is not None:
        print(json.dumps(soak_node(a.checkpoint, tuple(a.size), a.rate, a.soak, a.threads, a.domain, input_size,
                                   a.cameras, a.sample_s, progress=lambda m: print(m, file=sys.stderr, flush=True)),
                         indent=2))
        return
    print(json.dumps(bench_node(a.checkpoint, tuple(a.size), a.rate, a.seconds, a.threads, a.domain,
                                input_size, tuple(dict.fromkeys(a.outputs))), indent=2))
