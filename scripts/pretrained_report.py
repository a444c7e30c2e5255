"""The heads-on-a-pretrained-backbone ablation table from docs/bench/pretrained/ (fornet eval JSON of
each run, final weights, hold-out drive 0006R0) and a `fornet bench --json` of the same builds.

usage: python scripts/pretrained_report.py [--dir docs/bench/pretrained] [--bench docs/bench/pretrained/bench_512x1024.json]
Prints a markdown table. Runs are named <variant>[_k1]_s<seed>[_at_k<K>].
"""
import argparse
import json
import re
from pathlib import Path

THIN = ("pole", "traffic sign", "person", "rider")
BUILDS = [  # (run name, test-time K or None, label, bench variant, bench K, bench mode)
    ("mnv2_plain", None, "MobileNetV2 + plain head (focus off)", "mnv2_plain (focus off)", None, "dense"),
    ("mnv2_paper", None, "MobileNetV2 + paper head, K = 0.4 (trained)", "mnv2_paper", 0.4, "masked"),
    ("mnv2_paper", "0.2", "MobileNetV2 + paper head, run at K = 0.2", "mnv2_paper", 0.2, "masked"),
    ("mnv2_paper", "1.0", "MobileNetV2 + paper head, run at K = 1", "mnv2_paper", 1.0, "masked"),
    ("mnv2_sparse_k1", None, "MobileNetV2 + sparse head, trained K = 1, run at K = 1", "mnv2_sparse", 1.0, "dense"),
    ("mnv2_sparse_k1", "0.25", "MobileNetV2 + sparse head, trained K = 1, run at K = 0.25", "mnv2_sparse", 0.25, "sparse"),
]


def load(d: Path):
    runs = {}
    for f in sorted(d.glob("eval_*.json")):
        m = re.fullmatch(r"eval_(.+)_s(\d+)(?:_at_k([\d.]+))?", f.stem)
        if m and f.stat().st_size:
            runs.setdefault((m[1], m[3]), {})[int(m[2])] = json.loads(f.read_text())
    return runs


def cell(seeds, key):
    v = [r[key] if key in r else r["per_class_iou"].get(key, float("nan")) for r in seeds.values()]
    m = sum(v) / len(v)
    return f"{m:.3f} ± {(max(v) - min(v)) / 2:.3f}" if len(v) > 1 else f"{m:.3f}"


def latency(bench, variant, k, mode):
    for r in bench.get("results", []):
        if r["variant"] == variant and r["mode"] == mode and (k is None or r["topk"] is not None and abs(r["topk"] - k) < 1e-9):
            return f"{r['total_ms']:.0f}"
    return "-"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", default="docs/bench/pretrained")
    p.add_argument("--bench", default="docs/bench/pretrained/bench_512x1024.json")
    a = p.parse_args()
    runs = load(Path(a.dir))
    bench = json.loads(Path(a.bench).read_text()) if Path(a.bench).is_file() else {}
    print("| build | seeds | mIoU | boundary IoU | thin mIoU | " + " | ".join(THIN) + " | CPU ms 512x1024 |")
    print("|---|---|---|---|---|" + "---|" * len(THIN) + "---|")
    for run, k, label, variant, bk, mode in BUILDS:
        seeds = runs.get((run, k))
        if not seeds:
            continue
        cols = [cell(seeds, key) for key in ("miou", "boundary_iou", "thin_miou", *THIN)]
        print(f"| {label} | {len(seeds)} | " + " | ".join(cols) + f" | {latency(bench, variant, bk, mode)} |")


if __name__ == "__main__":
    main()
