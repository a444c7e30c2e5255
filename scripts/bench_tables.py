"""Markdown tables of docs/bench/bench_ablation.json (one `fornet bench` run: models x sizes x K x
path x backend) for docs/benchmarks.md, with the ratios the issues set targets on.

usage: python scripts/bench_tables.py [docs/bench/bench_ablation.json]
"""
import json
import sys
from pathlib import Path

res = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/bench/bench_ablation.json").read_text())
rows = res["results"]
print(f"Machine: {res['machine']}, {res['threads']} threads, {res['device']}, torch {res['torch']}, batch "
      f"{res['batch']}, median of {res['runs']} runs; backends {', '.join(res['backends'])}.\n")


def get(variant, backend, size, k=None, mode="dense"):
    for r in rows:
        if (r["variant"], r["backend"], tuple(r["size"]), r["topk"], r["mode"]) == (variant, backend, size, k, mode):
            return r
    return None


for size in [tuple(s) for s in res["sizes"]]:
    print(f"**{size[0]}x{size[1]}** (whole network ms; focus stage alone ms)\n")
    print("| model | backend | K | sparse total | dense total | sparse focus | dense focus |")
    print("|---|---|---|---|---|---|---|")
    for backend in res["backends"]:
        for k in sorted({r["topk"] for r in rows if r["topk"] is not None}):
            s, d = get("fornet_s", backend, size, k, "sparse"), get("fornet_s", backend, size, k, "dense")
            if s and d:
                print(f"| fornet_s | {backend} | {k:g} | {s['total_ms']:.1f} | {d['total_ms']:.1f} | "
                      f"{s['focus_ms']:.2f} | {d['focus_ms']:.2f} |")
        for name in ("fornet_s (focus off)", "ddrnet23_slim"):
            r = get(name, backend, size)
            if r:
                print(f"| {name} | {backend} | - | {r['total_ms']:.1f} | | | |")
    print()
    for backend in res["backends"]:
        s25, d1 = get("fornet_s", backend, size, 0.25, "sparse"), get("fornet_s", backend, size, 1.0, "dense")
        ddr = get("ddrnet23_slim", backend, size)
        if s25 and d1:
            print(f"- {backend}: focus stage sparse K=0.25 / dense K=1 = {s25['focus_ms']:.2f} / {d1['focus_ms']:.2f} "
                  f"= **{s25['focus_ms'] / d1['focus_ms']:.2f}**")
        if s25 and ddr:
            print(f"- {backend}: fornet_s K=0.25 / DDRNet-23-slim = {s25['total_ms']:.1f} / {ddr['total_ms']:.1f} "
                  f"= **{s25['total_ms'] / ddr['total_ms']:.2f}**")
    t, o = get("fornet_s", "torch", size, 0.25, "sparse"), get("fornet_s", "onnxruntime", size, 0.25, "sparse")
    if t and o:
        print(f"- onnxruntime / torch, fornet_s K=0.25 sparse: {o['total_ms']:.1f} / {t['total_ms']:.1f} = "
              f"**{o['total_ms'] / t['total_ms']:.2f}**")
    print()
