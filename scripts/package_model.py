#!/usr/bin/env python3
"""Make a trained checkpoint a packaged model: set the input size chosen from measurements and
record that step beside (not inside) the trainer-written ``train`` record.

    python scripts/package_model.py runs/streets/best.pt --input-size 384 768 \
        --out fornet_ros/weights/fornet_mnv2_streets.pt --why "2:1 cameras: docs/model_card.md"

The weights and the ``train`` record are copied unchanged; ``package`` records the input size, the
source file's sha256 and this command. A recipe that names ``input_size`` makes this step unnecessary.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fornet_ros.inference.checkpoint import read_checkpoint  # noqa: E402
from fornet_ros.model.pretrained import sha256  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--input-size", type=int, nargs=2, required=True, metavar=("H", "W"))
    p.add_argument("--out", required=True)
    p.add_argument("--why", default="", help="one line: where the measurements behind the input size are")
    a = p.parse_args(argv)
    ckpt = read_checkpoint(a.checkpoint)
    for key in ("optimizer", "scheduler", "step", "best_miou"):  # a last.pt's resume state
        ckpt.pop(key, None)
    ckpt["package"] = {"input_size": list(a.input_size), "trained_input_size": ckpt["input_size"],
                       "source": Path(a.checkpoint).name, "source_sha256": sha256(Path(a.checkpoint)),
                       "why": a.why, "command": "python scripts/package_model.py " + shlex.join(sys.argv[1:] if argv is None else argv)}
    ckpt["input_size"] = list(a.input_size)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, a.out)
    print(f"{a.out}: input size {a.input_size[0]}x{a.input_size[1]}, {Path(a.out).stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
