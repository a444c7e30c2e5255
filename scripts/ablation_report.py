"""The issue #9 ablation table and figure from docs/bench/ablation2/ (fornet eval JSON of each run)
and docs/bench/bench_ablation.json (fornet bench of the same builds, one run).

usage: python scripts/ablation_report.py [--dir docs/bench/ablation2] [--bench docs/bench/bench_ablation.json]
       [--figure docs/images/ablation_quality_vs_cost.png]
Prints markdown tables; writes the figure (matplotlib). Runs are named <build>_s<seed>.
"""
import argparse
import json
import re
from pathlib import Path

THIN = ("pole", "traffic sign", "person", "rider")
BUILDS = [("focus_off", "focus off"), ("k0.10", "K = 0.1"), ("k0.25", "K = 0.25"), ("k0.50", "K = 0.5"),
          ("k1.00", "K = 1 (dense refinement everywhere)"), ("ddrnet", "DDRNet-23-slim")]


def load(d: Path):
    runs = {}
    for f in sorted(d.glob("eval_*.json")):
        m = re.fullmatch(r"eval_(.+)_s(\d+)(?:_at_k([\d.]+))?", f.stem)
        if m and f.stat().st_size:  # an empty file is an evaluation still running
            runs.setdefault((m[1], m[3]), {})[int(m[2])] = json.loads(f.read_text())
    return runs


def metrics(r: dict) -> dict:
    pc = r["per_class_iou"]
    return {"miou": r["miou"], "boundary_iou": r["boundary_iou"], "thin_miou": r["thin_miou"],
            **{c: pc.get(c, float("nan")) for c in THIN}}


def stat(seeds: dict, key: str) -> tuple[float, float, int]:
    v = [metrics(r)[key] for r in seeds.values()]
    return sum(v) / len(v), (max(v) - min(v)) / 2, len(v)


def fmt(seeds, key):
    m, h, n = stat(seeds, key)
    return f"{m:.3f} ± {h:.3f}" if n > 1 else f"{m:.3f}"


def latency(bench: dict, build: str, size, k=None):
    name = {"focus_off": "fornet_s (focus off)", "ddrnet": "ddrnet23_slim"}.get(build, "fornet_s")
    if k is None and build.startswith("k"):
        k = float(build[1:])
    for r in bench.get("results", []):
        if r["variant"] == name and r["size"] == list(size) and (r["topk"] is None or abs(r["topk"] - k) < 1e-9):
            if r["topk"] is None or r["mode"] == ("dense" if k == 1.0 else "sparse"):
                return r
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", default="docs/bench/ablation2")
    p.add_argument("--bench", default="docs/bench/bench_ablation.json")
    p.add_argument("--figure", default="docs/images/ablation_quality_vs_cost.png")
    a = p.parse_args()
    runs = load(Path(a.dir))
    bench = json.loads(Path(a.bench).read_text()) if Path(a.bench).is_file() else {}
    sizes = [tuple(s) for s in bench.get("sizes", [])]
    lat_cols = "".join(f" | ms {h}x{w}" for h, w in sizes)
    print(f"| build | seeds | mIoU | boundary IoU | thin mIoU | pole | sign | person | rider{lat_cols} |")
    print("|---|---|---|---|---|---|---|---|---" + "|---" * len(sizes) + "|")
    for build, label in BUILDS:
        seeds = runs.get((build, None))
        if not seeds:
            continue
        lats = "".join(f" | {r['total_ms']:.1f}" if (r := latency(bench, build, s)) else " | -" for s in sizes)
        cells = " | ".join(fmt(seeds, k) for k in ("miou", "boundary_iou", "thin_miou", *THIN))
        print(f"| {label} | {','.join(map(str, sorted(seeds)))} | {cells}{lats} |")
    print()
    print("Test-time K on the K = 0.25- and the K = 1-trained models (same weights; K = 0 is the cheap path alone):")
    print()
    print("| trained K | test K | seeds | mIoU | boundary IoU | thin mIoU | pole | sign | person | rider | focus ms 512x1024 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    sweeps = {}
    for trained in ("k0.25", "k1.00"):
        sweep = {float(trained[1:]): runs.get((trained, None), {})}
        for (build, k), seeds in runs.items():
            if build == trained and k is not None:
                sweep[float(k)] = seeds
        sweeps[trained] = sweep
        for k in sorted(sweep):
            if not sweep[k]:
                continue
            r = latency(bench, "k0.25", (512, 1024), k) if k > 0 else {"focus_ms": 0.0}
            cells = " | ".join(fmt(sweep[k], m) for m in ("miou", "boundary_iou", "thin_miou", *THIN))
            ms = f"{r['focus_ms']:.1f}" if r else "-"
            print(f"| {trained[1:]} | {k} | {','.join(map(str, sorted(sweep[k])))} | {cells} | {ms} |")
    figure(runs, sweeps, bench, a.figure)
    adaptive(Path(a.dir), Path(a.figure).with_name("adaptive_k.png"))


def adaptive(d: Path, path):
    """Fixed K vs content-adaptive K on the K=0.25-trained models: quality vs mean refined share."""
    rows = {}
    for f in sorted(d.glob("eval_k0.25_s*.json")):
        m = re.fullmatch(r"eval_k0.25_s(\d+)(?:_at_k([\d.]+)|_adaptive_t([\d.]+))?", f.stem)
        if not m or not f.stat().st_size:
            continue
        key = ("adaptive", float(m[3])) if m[3] else ("fixed", float(m[2]) if m[2] else 0.25)
        rows.setdefault(key, []).append(json.loads(f.read_text()))
    if not any(k[0] == "adaptive" for k in rows):
        return
    print()
    print("Fixed vs content-adaptive K (K=0.25-trained weights; refined share = mean fraction of the image refined):")
    print()
    print("| rule | seeds | refined share | mIoU | boundary IoU | thin mIoU |")
    print("|---|---|---|---|---|---|")
    pts = {"fixed": [], "adaptive": []}
    for (kind, v), rs in sorted(rows.items()):
        share = sum(r["selected_fraction"] or 0.0 for r in rs) / len(rs)
        vals = [sum(r[k] for r in rs) / len(rs) for k in ("miou", "boundary_iou", "thin_miou")]
        label = f"fixed K = {v:g}" if kind == "fixed" else f"adaptive, importance >= {v:g} (K in [0.05, 0.5])"
        print(f"| {label} | {len(rs)} | {share:.3f} | {vals[0]:.3f} | {vals[1]:.3f} | {vals[2]:.3f} |")
        pts[kind].append((share, *vals, v))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, i, title in ((axes[0], 2, "boundary IoU"), (axes[1], 3, "thin-class mIoU")):
        for kind, style in (("fixed", "o-"), ("adaptive", "s--")):
            q = sorted(pts[kind])
            ax.plot([x[0] for x in q], [x[i] for x in q], style, label=f"{kind} K")
            for x in q:
                ax.annotate(f"{x[4]:g}", (x[0], x[i]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("mean share of the image refined (∝ focus-stage cost)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}")


def figure(runs, sweeps, bench, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in ((axes[0], "boundary_iou", "boundary IoU (3 px band)"), (axes[1], "thin_miou", "thin-class mIoU")):
        for trained, color in (("k0.25", "tab:blue"), ("k1.00", "tab:red")):
            sweep = sweeps.get(trained, {})
            xs, ys = [], []
            for k in sorted(sweep):
                r = latency(bench, "k0.25", (512, 1024), k) if k > 0 else {"focus_ms": 0.0}
                if sweep[k] and r:
                    xs.append(r["focus_ms"])
                    ys.append(stat(sweep[k], key)[0])
            if len(xs) > 1:
                ax.plot(xs, ys, "o-", color=color, alpha=0.6,
                        label=f"K={float(trained[1:]):g}-trained model, test-time K 0…1")
        for build, color in (("focus_off", "tab:gray"), ("k0.10", "tab:cyan"), ("k0.25", "tab:blue"),
                             ("k0.50", "tab:purple"), ("k1.00", "tab:red")):
            seeds = runs.get((build, None))
            if not seeds:
                continue
            k = 0.0 if build == "focus_off" else float(build[1:])
            r = latency(bench, build, (512, 1024), k) if k > 0 else {"focus_ms": 0.0}
            m, h, _ = stat(seeds, key)
            ax.errorbar([r["focus_ms"] if r else 0.0], [m], yerr=[h], fmt="s", color=color, capsize=4,
                        label=f"trained {'focus off' if k == 0 else f'K={k:g}'} (mean ± half range over seeds)")
        seeds = runs.get(("ddrnet", None))
        if seeds:
            m, h, _ = stat(seeds, key)
            ax.axhline(m, color="tab:green", ls="--", label="DDRNet-23-slim (no focus stage)")
        ax.set_xlabel("focus-stage time at 512x1024, 2 threads (ms)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("hold-out drive 0006R0")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
