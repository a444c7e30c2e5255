#!/usr/bin/env python3
"""Average the weights of checkpoints of one lineage (a model soup / SWA-style average; Wortsman et
al. 2022, "Model soups"): typically the last checkpoints of two consecutive training stages.

    python scripts/average_checkpoints.py runs/streets_s4/last.pt runs/streets_s5/last.pt \
        --out runs/streets_avg45.pt [--weights 0.5 0.5]

Floating-point tensors (weights and BatchNorm running statistics) are averaged with ``--weights``;
integer buffers (BatchNorm's batch counters) come from the last checkpoint. Everything else (model
config, classes, the trainer's ``train`` record) is the last checkpoint's, and ``average`` records
the sources (file name, sha256, weight) and this command beside it: no hand edits. The checkpoints
must share a model config and every tensor's name and shape; anything else is refused in one line.
Hand-written because it is a dozen lines over torch's state dicts (torch.optim.swa_utils averages
a model during training, not saved checkpoints).
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


def average(paths, weights, command: str = "") -> dict:
    ckpts = [read_checkpoint(p) for p in paths]
    last = ckpts[-1]
    for p, c in zip(paths, ckpts):
        if c["model_config"] != last["model_config"]:
            raise SystemExit(f"average_checkpoints: {p} has another model config than {paths[-1]}")
        if {k: tuple(v.shape) for k, v in c["state_dict"].items()} != \
                {k: tuple(v.shape) for k, v in last["state_dict"].items()}:
            raise SystemExit(f"average_checkpoints: {p} has other tensors than {paths[-1]}")
    state = {}
    for name, t in last["state_dict"].items():
        if t.is_floating_point():
            state[name] = sum(w * c["state_dict"][name].double() for w, c in zip(weights, ckpts)).to(t.dtype)
        else:
            state[name] = t.clone()
    out = {k: v for k, v in last.items() if k not in ("optimizer", "scheduler", "step", "best_miou")}
    out["state_dict"] = state
    out["average"] = {"sources": [{"file": str(p), "sha256": sha256(Path(p)), "weight": w}
                                  for p, w in zip(paths, weights)],
                      "command": command}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="two or more checkpoints of one model (the last one's record is kept)")
    p.add_argument("--weights", type=float, nargs="+", default=None, help="one per checkpoint (default: equal)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    weights = a.weights or [1.0 / len(a.checkpoints)] * len(a.checkpoints)
    if len(a.checkpoints) < 2 or len(weights) != len(a.checkpoints) or min(weights) < 0 or abs(sum(weights) - 1) > 1e-6:
        p.error("give two or more checkpoints and, if any, one non-negative weight each, summing to 1")
    command = "python scripts/average_checkpoints.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    torch.save(average(a.checkpoints, weights, command), a.out)
    print(f"wrote {a.out}: " + ", ".join(f"{w:g} x {c}" for w, c in zip(weights, a.checkpoints)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
