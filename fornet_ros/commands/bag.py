"""``fornet bag``: rosbag2 tools through ``rosbags`` (from-cityscapes, from-folder, eval, info: no ROS),
and ``play``, which publishes with rclpy (imported only for it)."""

from __future__ import annotations

import json

from .model_options import add_model_arguments, segmenter_from_args


def add_arguments(p):
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


def run(a):
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
        from ..ros.bag_player import play
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
