"""Markdown tables for docs/benchmarks.md.

usage: python scripts/bench_tables.py [docs/bench/bench_ablation.json]   one `fornet bench` run: models x sizes
                                                                          x K x path x backend (fornet_s ablation)
       python scripts/bench_tables.py --speed [docs/bench/speed]         the default vs DDRNet-23-slim, the focus
                                                                          path choice, int8, the node (bench_speed.sh)
"""
import json
import sys
from pathlib import Path


def get(rows, variant, backend, size, k=None, mode="dense"):
    for r in rows:
        if (r["variant"], r["backend"], tuple(r["size"]), r["topk"], r["mode"]) == (variant, backend, size, k, mode):
            return r
    return None


def ablation_tables(path):
    res = json.loads(Path(path).read_text())
    rows = res["results"]
    print(f"Machine: {res['machine']}, {res['threads']} threads, {res['device']}, torch {res['torch']}, batch "
          f"{res['batch']}, median of {res['runs']} runs; backends {', '.join(res['backends'])}.\n")
    for size in [tuple(s) for s in res["sizes"]]:
        print(f"**{size[0]}x{size[1]}** (whole network ms; focus stage alone ms)\n")
        header("model", "backend", "K", "sparse total", "dense total", "sparse focus", "dense focus")
        for backend in res["backends"]:
            for k in sorted({r["topk"] for r in rows if r["topk"] is not None}):
                s, d = get(rows, "fornet_s", backend, size, k, "sparse"), get(rows, "fornet_s", backend, size, k, "dense")
                if s and d:
                    print(f"| fornet_s | {backend} | {k:g} | {s['total_ms']:.1f} | {d['total_ms']:.1f} | "
                          f"{s['focus_ms']:.2f} | {d['focus_ms']:.2f} |")
            for name in ("fornet_s (focus off)", "ddrnet23_slim"):
                r = get(rows, name, backend, size)
                if r:
                    print(f"| {name} | {backend} | - | {r['total_ms']:.1f} | | | |")
        print()
        for backend in res["backends"]:
            s25, d1 = get(rows, "fornet_s", backend, size, 0.25, "sparse"), get(rows, "fornet_s", backend, size, 1.0, "dense")
            ddr = get(rows, "ddrnet23_slim", backend, size)
            if s25 and d1:
                print(f"- {backend}: focus stage sparse K=0.25 / dense K=1 = {s25['focus_ms']:.2f} / "
                      f"{d1['focus_ms']:.2f} = **{s25['focus_ms'] / d1['focus_ms']:.2f}**")
            if s25 and ddr:
                print(f"- {backend}: fornet_s K=0.25 / DDRNet-23-slim = {s25['total_ms']:.1f} / {ddr['total_ms']:.1f} "
                      f"= **{s25['total_ms'] / ddr['total_ms']:.2f}**")
        t, o = get(rows, "fornet_s", "torch", size, 0.25, "sparse"), get(rows, "fornet_s", "onnxruntime", size, 0.25, "sparse")
        if t and o:
            print(f"- onnxruntime / torch, fornet_s K=0.25 sparse: {o['total_ms']:.1f} / {t['total_ms']:.1f} = "
                  f"**{o['total_ms'] / t['total_ms']:.2f}**")
        print()


def header(*cols):
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))


def load(d, name):
    p = d / name
    return json.loads(p.read_text()) if p.is_file() and p.stat().st_size else None


def path_choice_table(res, ddr):
    rows, v = res["results"], res["results"][0]["variant"]
    print(f"`fornet bench` ({res['machine']}, {res['threads']} threads, torch {res['torch']}, BN folded: "
          f"{res.get('fold_bn', False)}, median of {res['runs']}); whole network ms; `auto` = the path the warm-up "
          "table picks, measured separately from these runs.\n")
    header("size", "backend", "K", "sparse", "dense", "auto takes", "auto / faster")
    for size in [tuple(s) for s in res["sizes"]]:
        for backend in res["backends"]:
            for k in sorted({r["topk"] for r in rows if r["topk"] is not None}):
                s, d = get(rows, v, backend, size, k, "sparse"), get(rows, v, backend, size, k, "dense")
                if s and d:
                    auto = s if s.get("auto_path") == "sparse" else d
                    print(f"| {size[0]}x{size[1]} | {backend} | {k:g} | {s['total_ms']:.1f} | {d['total_ms']:.1f} | "
                          f"{s.get('auto_path', '-')} | {auto['total_ms'] / min(s['total_ms'], d['total_ms']):.2f} |")
    print()
    if ddr:
        header("size", "default K=1, best runtime", "DDRNet-23-slim, best runtime", "ratio")
        for size in [tuple(s) for s in res["sizes"]]:
            mine = [(r["total_ms"], r["backend"]) for r in rows if tuple(r["size"]) == size and r["topk"] == 1.0
                    and r["mode"] == "dense"]
            theirs = [(r["total_ms"], r["backend"]) for r in ddr["results"] if tuple(r["size"]) == size]
            if mine and theirs:
                (a, ab), (b, bb) = min(mine), min(theirs)
                print(f"| {size[0]}x{size[1]} | {a:.1f} ({ab}) | {b:.1f} ({bb}) | **{a / b:.2f}** |")
        print()


def speed_tables(d):
    d = Path(d)
    machine = (d / "machine.txt").read_text().strip().replace("\n", "; ") if (d / "machine.txt").is_file() else "?"
    print(f"Machine: {machine}\n")
    res, ddr = load(d, "bench_default.json"), load(d, "bench_ddrnet.json")
    if res:
        path_choice_table(res, ddr)
    ab = load(d, "focus_ab_360x480.json")
    if ab:
        print(f"Sparse focus stage before / after, interleaved in one process ({ab['size'][0]}x{ab['size'][1]}, "
              f"median of {ab['rounds']}); per region = stage ms / regions refined, over dense ms / all regions.\n")
        header("K", "regions", "old sparse ms", "new sparse ms", "dense ms", "per region vs dense, old", "new")
        for r in ab["rows"]:
            print(f"| {r['topk']:g} | {r['regions']}/{r['of']} | {r['old sparse_ms']:.2f} | {r['new sparse_ms']:.2f} | "
                  f"{r['dense_ms']:.2f} | {r['old_per_region_vs_dense']:.2f} | **{r['new_per_region_vs_dense']:.2f}** |")
        print()
    q = load(d, "int8.json")
    if q:
        ms = q["network_ms"]
        print(f"int8 ({q['checkpoint']}, K={q['topk']:g} {q['graph']}, {q['input_size'][0]}x{q['input_size'][1]}, "
              f"{len(q['calibration_frames'])} calibration frames; export {q['export_s']} s, quantization "
              f"{q['quantize_s']} s): network ms " + ", ".join(f"{n} **{t:.1f}**" for n, t in ms.items())
              + f"; labels equal to torch fp32: {q['labels_equal_int8_vs_torch']:.3f}.\n")
    for name in sorted(p.name for p in d.glob("eval_*.json")):
        e = load(d, name)
        if e:
            print(f"- `{name}`: mIoU {e.get('miou', e.get('mIoU', float('nan'))):.3f}")
    for name in ["node_360x480_5hz.json", *sorted(p.name for p in d.glob("node_720x1280_5hz_*.json"))]:
        node = load(d, name)
        if not node:
            continue
        # bench-node records the backend it was asked for; JSON written before it did carries it in its file name
        asked = node.get("backend_requested") or (name[len("node_720x1280_5hz_"):-len(".json")]
                                                  if name.startswith("node_720x1280_5hz_") else node["backend"])
        print(f"\n`fornet bench-node` ({node['size'][0]}x{node['size'][1]} camera, {node['rate_hz']:g} Hz, "
              f"{node['seconds']:g} s, `{name}`: --backend {asked}, runtime alone {node.get('runtime', node['backend'])}): "
              f"model alone p50 {node['model_alone_ms_p50']:.1f} ms" + (f"; alone, {node['choice']}" if node.get("choice")
                                                                       else "") + "\n")
        floor = any("transport_floor_ms_p50" in r for r in node["runs"])  # bench-node measures it since session 8
        header("outputs subscribed", "node runtime", "node e2e p50", "p95", "node / alone", "node's inference p50",
               "inside / alone", *(("transport floor p50", "node's own ms") if floor else ()))
        for r in node["runs"]:
            diag = r.get("node_diagnostics") or {}
            nir = r.get("node_inference_ratio_p50")
            own = (f" {r['transport_floor_ms_p50']:.1f} | {r['node_own_ms_p50']:.1f} |"
                   if floor and r.get("node_own_ms_p50") is not None else " - | - |" if floor else "")
            print(f"| {r['outputs']} | {diag.get('runtime') or diag.get('backend')} | {r['node_e2e_ms_p50']:.1f} | "
                  f"{r['node_e2e_ms_p95']:.1f} | **{r['overhead_ratio_p50']:.2f}** | {diag.get('inference_ms_p50')} | "
                  f"{'-' if nir is None else format(nir, '.2f')} |{own}")

    for name in sorted(p.name for p in d.glob("e2e_backends*.json")):  # one per run (settings, repetitions)
        e2e = load(d, name)
        if not e2e:
            continue
        spin = f", GOMP_SPINCOUNT {e2e['gomp_spincount']}" if "gomp_spincount" in e2e else ""
        print(f"\n`{name}`: the Segmenter end to end vs the network alone ({e2e['checkpoint']}, {e2e['threads']} "
              f"threads, median of {e2e['runs']}{spin}; fastest chose: {e2e['fastest_choice']}); ratios over the best "
              "network time at that camera size\n")
        header("camera", "backend (runs on)", "network", "pre", "post, labels", "e2e labels", "e2e all maps",
               "e2e labels / best network", "e2e all / best network")
        for r in e2e["rows"]:
            print(f"| {r['camera_size'][0]}x{r['camera_size'][1]} | {r['backend']} ({r['runs_on']}) | {r['network_ms']:.1f} "
                  f"| {r['pre_ms']:.1f} | {r['post_labels_ms']:.1f} | {r['e2e_labels_ms']:.1f} | {r['e2e_all_ms']:.1f} "
                  f"| **{r['e2e_labels_over_best_network']:.2f}** | {r['e2e_all_over_best_network']:.2f} |")
        ab = [r for r in e2e["rows"] if "argmax_host_ops_ms" in r]
        if ab:
            print("\nThe two CPU steps inference/host_ops.py replaced, old vs new, same frame and logits (ms)\n")
            header("camera", "normalise: numpy", "cv2.LUT", "upsample + arg-max: OpenCV + numpy", "host_ops")
            for r in ab:
                print(f"| {r['camera_size'][0]}x{r['camera_size'][1]} | {r['normalise_numpy_ms']:.2f} "
                      f"| **{r['normalise_lut_ms']:.2f}** | {r['argmax_opencv_ms']:.2f} | **{r['argmax_host_ops_ms']:.2f}** |")
    comp = load(d, "compile.json")
    if comp:
        print(f"\ntorch.compile vs eager ({comp['checkpoint']}, torch {comp['torch']}, {comp['threads']} threads, "
              f"interleaved, median of {comp['runs']})\n")
        header("input", "K, path", "eager ms", "compiled ms", "compiled / eager", "compile warm-up s", "max |logit diff|")
        for r in comp["rows"]:
            print(f"| {r['size'][0]}x{r['size'][1]} | {r['k']:g}, {r['mode']} | {r['eager_ms']:.1f} | {r['compiled_ms']:.1f} "
                  f"| **{r['ratio']:.2f}** | {r['compile_warmup_s']:.0f} | {r['max_abs_logit_diff']:.1e} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--speed":
        speed_tables(sys.argv[2] if len(sys.argv) > 2 else "docs/bench/speed")
    else:
        ablation_tables(sys.argv[1] if len(sys.argv) > 1 else "docs/bench/bench_ablation.json")
