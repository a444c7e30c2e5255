"""``fornet synth``: procedural street scenes with exact labels in the Cityscapes layout
(:func:`fornet_ros.tools.synthetic.write_cityscapes_like`)."""

from __future__ import annotations

import json

from ..errors import FornetError
from ..tools.synthetic import write_cityscapes_like


def add_arguments(p):
    p.description = "Write procedural street scenes with exact labels in the Cityscapes layout (leftImg8bit/, gtFine/, camera/)."
    p.add_argument("--out", required=True, help="output folder (Cityscapes layout)")
    p.add_argument("--frames", type=int, default=8, help="number of scenes")
    p.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"), help="image size")
    p.add_argument("--split", default="val", help="split folder name")
    p.add_argument("--seed", type=int, default=0, help="seed of the scene generator")


def run(a):
    if a.frames < 1 or min(a.size) < 16:
        raise FornetError(f"--frames must be >= 1 and --size at least 16x16, got {a.frames} frames of {tuple(a.size)}")
    cam = write_cityscapes_like(a.out, a.frames, tuple(a.size), a.split, seed=a.seed)
    print(json.dumps({"out": a.out, "frames": a.frames, "camera": cam}))
