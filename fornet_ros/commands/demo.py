"""``fornet demo``: the whole pipeline through DDS (:func:`fornet_ros.ros.demo.replay_demo`) and its report."""

from __future__ import annotations

import json
from pathlib import Path

from .bag import add_playback_arguments


def add_arguments(p):
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
    p.add_argument("--timeout", type=float, default=180.0, help="seconds the node may take to start and answer")
    p.add_argument("--costmap-config", default=None, help="layer YAML (default: the built-in layers)")
    p.add_argument("--allow-untrained", action="store_true", help="run with random weights if no checkpoint loads")
    add_playback_arguments(p, "paced")
    p.add_argument("--self-mask-rows", type=int, default=0, metavar="N",
                   help="the camera's own vehicle: the bottom N image rows never reach the costmap (drawn in the "
                        "report); Cityscapes' ego hood needs about 228 at 2048x1024")


def run(a):
    from ..errors import FornetError
    from ..ros.demo import replay_demo
    if (a.frames is not None and a.frames < 1) or min(a.size) < 16 or (a.rate is not None and a.rate <= 0) \
            or a.answer_timeout <= 0:
        raise FornetError(f"--frames must be >= 1, --rate and --answer-timeout > 0 and --size at least 16x16, got "
                          f"{a.frames} frames, rate {a.rate}, answer timeout {a.answer_timeout}, size {tuple(a.size)}")
    if a.self_mask_rows < 0:
        raise FornetError(f"--self-mask-rows must be >= 0, got {a.self_mask_rows}")
    try:
        s = replay_demo(a.out, a.input, a.checkpoint, a.frames, tuple(a.size), a.rate, a.timeout,
                        allow_untrained=a.allow_untrained, costmap_config=a.costmap_config, playback=a.playback,
                        answer_timeout=a.answer_timeout, self_mask_rows=a.self_mask_rows)
    except RuntimeError as e:  # the node failed to start or produced nothing: say why, in one line
        raise FornetError(str(e)) from e
    ref = (s.get("reference") or {}).get("metrics") or {}
    print(json.dumps({k: s[k] for k in ("frames_in_bag", "playback", "frames_segmented", "frames_scored")} |
                     {"miou": (s["metrics"] or {}).get("miou"), "eval_miou": ref.get("miou"),
                      "report": str(Path(a.out) / "index.html")}))
