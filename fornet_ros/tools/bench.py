"""Latency benchmark of the network vs K (used by ``fornet bench``)."""

from __future__ import annotations

import platform
import statistics
import time

import torch


def machine_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _times_ms(fn, runs: int, warmup: int, sync) -> list[float]:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        ts.append((time.perf_counter() - t) * 1000)
    return ts


def _median_ms(fn, runs: int, warmup: int, sync) -> float:
    return statistics.median(_times_ms(fn, runs, warmup, sync))


def _stats(ts: list[float]) -> dict:
    import numpy as np
    return {"median": round(float(np.median(ts)), 3), "p95": round(float(np.percentile(ts, 95)), 3)}


class _Network(torch.nn.Module):
    """The whole network at a fixed K and path, as one traceable module (for ONNX Runtime)."""

    def __init__(self, model, k, mode):
        super().__init__()
        self.model, self.k, self.mode = model, k, mode

    def forward(self, x):
        return self.model(x, topk_ratio=self.k, mode=self.mode)["logits"]


class _Focus(torch.nn.Module):
    """The focus stage alone on precomputed inputs, at a fixed K and path (for ONNX Runtime)."""

    def __init__(self, refiner, k, mode):
        super().__init__()
        self.refiner, self.k, self.mode = refiner, k, mode

    def forward(self, fine, context, coarse_up, importance):
        return self.refiner(fine, context, coarse_up, importance, self.k, self.mode)[0]


def _ort_timer(module, inputs, threads):
    """Export ``module`` (eval) to ONNX in memory and return a callable running it in onnxruntime."""
    import io

    import onnxruntime as ort
    buf = io.BytesIO()
    names = [f"in{i}" for i in range(len(inputs))]
    torch.onnx.export(module.eval(), tuple(inputs), buf, input_names=names, opset_version=17, dynamo=False)
    from ..inference.runtime import session_options
    sess = ort.InferenceSession(buf.getvalue(), session_options(threads), providers=["CPUExecutionProvider"])
    feed = {n: t.contiguous().numpy() for n, t in zip(names, inputs)}
    return lambda: sess.run(None, feed)


ROUNDS_BLOCK = 5  # timed calls of one setting back to back in each round of fornet bench


def _interleaved_medians(fns, runs: int, warmup: int, sync, block: int = ROUNDS_BLOCK) -> list[float]:
    """Median ms of each callable over ``runs`` timed calls, taken in rounds: every round gives each
    callable one untimed call (its weights back in the caches, as when one model serves a camera)
    and then up to ``block`` timed calls back to back, the order rotated by one per round. Written
    here because timing one setting's runs all back to back let a slow spell of this shared 2-core
    VM land on one setting: the same default-vs-DDRNet row read 0.88-1.20x in three consecutive runs
    (docs/benchmarks.md); in rounds a slow spell is shared, and a block keeps the caches warm
    (single interleaved calls timed each model with cold caches instead)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    ts = [[] for _ in fns]
    for r in range(-(-runs // block)):
        for i in [(j + r) % len(fns) for j in range(len(fns))]:
            fns[i]()
            for _ in range(min(block, runs - len(ts[i]))):
                sync()
                t = time.perf_counter()
                fns[i]()
                sync()
                ts[i].append((time.perf_counter() - t) * 1000)
    return [statistics.median(t) for t in ts]


def bench_models(a) -> dict:
    """Whole-network latency (``total_ms``) and the focus stage alone (``focus_ms``: Top-K +
    branches on the same precomputed inputs) for every model, size, K, path and backend, in one
    run. Models without a focus stage (DDRNet-23-slim, focus-off builds) get one row per size and
    backend. The onnxruntime rows run the graph `fornet export` writes (same K, same path). Every
    setting of one size is timed interleaved with the others (:func:`_interleaved_medians`)."""
    import copy
    import warnings

    from ..inference import resolve_device
    from ..inference.checkpoint import DEFAULT_INPUT_SIZE, load_model
    from ..inference.path_choice import measure_costs
    from ..model import create_model
    if a.threads:
        torch.set_num_threads(a.threads)
    backends = getattr(a, "backend", None) or ["torch"]
    device = resolve_device(a.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    def sizes(default):  # --size, else the checkpoint's input size (an untrained variant has none: as fornet info)
        return [tuple(s) for s in a.size] if a.size else [tuple(default)]

    models = ([(create_model(v), sizes(DEFAULT_INPUT_SIZE)) for v in a.variant] if a.variant else
              [(m, sizes(meta.input_size)) for m, meta in [load_model(a.checkpoint)]])
    if getattr(a, "focus_off", False):
        models += [(create_model(m.cfg.variant, focus=False), ss) for m, ss in models if m.cfg.focus]
    fmt = torch.contiguous_format if a.no_channels_last else torch.channels_last
    prepared = []  # (model, its ONNX Runtime twin as `fornet export` writes it, sizes)
    for model, model_sizes in models:
        model = model.eval()
        if not getattr(a, "no_fold_bn", False):  # as the Segmenter's torch backend runs it
            from ..inference.backends import fold_batchnorm
            fold_batchnorm(model)
        model = model.to(device, memory_format=fmt)
        padded = model
        if "onnxruntime" in backends and hasattr(model, "pad_focus_channels"):
            padded = copy.deepcopy(model)
            if not padded.pad_focus_channels():
                padded = model  # nothing padded: the same network
        prepared.append((model, padded, model_sizes))

    def timer(module, inputs, backend):
        if backend == "torch":
            return lambda: module(*inputs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings: K and sizes are fixed at export on purpose
            return _ort_timer(module, [t.float().cpu() for t in inputs], torch.get_num_threads())

    results = []
    with torch.inference_mode():
        for size in dict.fromkeys(s for *_, ss in prepared for s in ss):  # each size: its settings, interleaved
            rows, fns = [], []  # a row's total timer at fns[i], its focus timer (if any) right after it

            def add(row, total, focus=None):
                rows.append((row, len(fns), focus is not None))
                fns.extend([total] + ([focus] if focus is not None else []))
            for model, padded, model_sizes in prepared:
                if size not in model_sizes:
                    continue
                cfg = model.cfg
                name = cfg.variant if cfg.focus or cfg.arch != "fornet" else f"{cfg.variant} (focus off)"
                x = torch.randn(a.batch, 3, *size, device=device).contiguous(memory_format=fmt)
                sparse_head = cfg.focus and getattr(cfg, "head", "sparse") == "sparse"
                inputs = model.focus_inputs(x)[2] if sparse_head else None
                # what mode "auto" would take: the Segmenter's warm-up table, measured separately
                table = measure_costs(model, x) if sparse_head else None
                for backend in backends:
                    row = {"variant": name, "backend": backend, "size": list(size)}
                    net, focus_in = model, inputs
                    if backend == "onnxruntime" and padded is not model:
                        net, focus_in = padded, padded.focus_inputs(x)[2] if sparse_head else None
                    if not cfg.focus:
                        add({**row, "topk": None, "mode": "dense", "focus_ms": 0.0},
                            timer(_Network(net, 0.0, "dense"), [x], backend))
                        continue
                    if not sparse_head:  # the paper head: masks gate dense convs, one path whatever K
                        for k in a.topk:
                            add({**row, "topk": k, "mode": "masked", "focus_ms": None},
                                timer(_Network(net, k, "dense"), [x], backend))
                        continue
                    for k in a.topk:
                        for mode in ("sparse", "dense"):
                            add({**row, "topk": k, "mode": mode, "auto_path": table.cheaper(k)},
                                timer(_Network(net, k, mode), [x], backend),
                                timer(_Focus(net.refiner, k, mode), list(focus_in), backend))
            ms = _interleaved_medians(fns, a.runs, a.warmup, sync)
            for row, i, has_focus in rows:
                row = {**row, "total_ms": round(ms[i], 3)}
                if has_focus:
                    row["focus_ms"] = round(ms[i + 1], 3)
                results.append(row)
    names = list(dict.fromkeys(r["variant"] for r in results))
    results.sort(key=lambda r: names.index(r["variant"]))  # model by model (stable: sizes in order within)
    return {"machine": machine_name(), "threads": torch.get_num_threads(), "device": str(device),
            "sizes": [list(s) for s in dict.fromkeys(s for _, ss in models for s in ss)], "batch": a.batch,
            "channels_last": not a.no_channels_last, "fold_bn": not getattr(a, "no_fold_bn", False),
            "runs": a.runs, "rounds_block": ROUNDS_BLOCK, "torch": torch.__version__, "backends": backends,
            "results": results}


def gpu_info(device) -> dict:
    """Name, driver and torch/CUDA versions of the GPU that ran (docs/benchmarks.md cites every GPU
    figure with them); empty on the CPU."""
    if device.type != "cuda":
        return {}
    import subprocess
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader", "-i",
                                 str(device.index or 0)], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        driver = None
    return {"gpu": torch.cuda.get_device_name(device), "driver": driver or None, "cuda": torch.version.cuda}


def bench_e2e(a) -> dict:
    """The Segmenter's stages one by one and end to end, per model, camera size, input size, camera
    count and K: the network alone (eager), the network replayed from a CUDA graph (None where
    graphs do not run: the CPU, opencv processing), pre-processing (frames -> input batch),
    post-processing (network outputs -> labels and all maps at the camera size), and end to end with
    every map and with labels only. Medians and p95 of ``--runs``; random uint8 frames."""
    import numpy as np

    from ..inference import OUTPUTS, Segmenter
    from ..inference.checkpoint import ModelMeta, load_model
    from ..model import create_model
    if a.threads:
        torch.set_num_threads(a.threads)
    models = ([(create_model(v), ModelMeta.default(19, (512, 1024)), v) for v in a.variant] if a.variant
              else [(*load_model(a.checkpoint), None)])
    rows, first, segs = [], None, []
    for model, meta, name in models:
        for size in (a.size or [meta.input_size]):
            seg = Segmenter(model, meta, device=a.device, precision=a.precision, input_size=size,
                            processing=a.processing, cuda_graphs=not a.no_cuda_graphs)
            first = first or seg
            segs.append(seg)
            sync = torch.cuda.synchronize if seg.device.type == "cuda" else (lambda: None)
            for k in (a.topk or [seg.topk_ratio]):
                seg.topk_ratio = k
                for cam in a.camera_size:
                    for n in a.cameras:
                        rng = np.random.default_rng(0)
                        frames = [rng.integers(0, 256, (*cam, 3), dtype=np.uint8) for _ in range(n)]
                        table = seg.paths.table(n)
                        if table is None or table.key[2] != n:
                            seg.warmup(n)  # what the node does at configure: auto takes the cheaper path
                        sizes = [tuple(cam)] * n

                        def t(fn):
                            return _stats(_times_ms(fn, a.runs, a.warmup, sync))
                        x = seg.prepare(frames)
                        path = seg.paths.resolve(seg.topk_ratio, a.mode, n) if seg.backend == "torch" else a.mode
                        net_mode = a.mode if path == "none" else path  # the network alone on the path auto takes
                        xt = x if isinstance(x, torch.Tensor) else torch.from_numpy(x).to(seg.device, seg.dtype)
                        hybrid = getattr(seg.runner, "takes", None)  # backend fastest: ONNX Runtime at its K
                        if hasattr(seg.runner, "run_tensor") and not (hybrid and hybrid(seg.topk_ratio)):
                            xt = xt.contiguous(memory_format=torch.channels_last) if seg.runner.channels_last else xt
                            with torch.inference_mode():
                                network = t(lambda: seg.runner.run_tensor(xt, seg.topk_ratio, net_mode))
                        else:  # onnxruntime (alone or at its K): numpy in, numpy out
                            network = t(lambda: seg.runner(x, seg.topk_ratio, net_mode))
                        graph = t(lambda: seg.infer(x, a.mode)) if seg.graphs is not None else None
                        out = seg.infer(x, a.mode, graph=False)
                        if graph is not None:  # the replay must equal eager (issue #20): say by how much
                            with torch.inference_mode():
                                eager = [o.float().clone() for o in out]
                                replay = [o.float() for o in seg.infer(x, a.mode)]
                            graph["max_abs_logit_diff"] = float((replay[0] - eager[0]).abs().max())
                            graph["selected_equal"] = bool(torch.equal(replay[2], eager[2]))
                        rows.append({"variant": name or seg.cfg.variant, "camera_size": list(cam),
                                     "input_size": list(seg.input_size), "cameras": n, "topk": seg.topk_ratio,
                                     "mode": a.mode,
                                     "network_ms": network, "graph_ms": graph,
                                     "pre_ms": t(lambda: seg.prepare(frames)),
                                     "post_ms": t(lambda: seg.finish(out, sizes, OUTPUTS)),
                                     "e2e_ms": t(lambda: seg(frames, a.mode)),
                                     "e2e_labels_ms": t(lambda: seg(frames, a.mode, outputs=())),
                                     "path": seg.paths.last,  # and the runtime that ran it (fastest: either)
                                     "runtime": seg.runtime})
    s = first
    return {"machine": machine_name(), "threads": torch.get_num_threads(), "device": str(s.device),
            **gpu_info(s.device), "torch": torch.__version__, "backend": s.backend, "provider": s.provider,
            "precision": str(s.dtype).split(".")[-1], "processing": s.processing,
            "cuda_graphs": s.graphs is not None, "runs": a.runs, "results": rows,
            "graph_failures": sorted({m for seg in segs if seg.graphs for m in seg.graphs.failed.values()})}


def bench_segmenter(checkpoint, image_size, input_size, topk: float | None, runs: int, threads: int | None) -> dict:
    """Segmenter end to end on one uint8 RGB image of ``image_size``: resize to ``input_size``,
    network, labels/confidence/importance back at the image size."""
    import numpy as np
    from ..inference import Segmenter
    if threads:
        torch.set_num_threads(threads)
    seg = Segmenter.from_checkpoint(checkpoint, device="cpu", input_size=input_size, topk_ratio=topk)
    img = np.random.default_rng(0).integers(0, 256, (*image_size, 3), dtype=np.uint8)
    ms = _median_ms(lambda: seg(img), runs, 3, lambda: None)
    return {"image_size": list(image_size), "input_size": list(seg.input_size), "topk": seg.topk_ratio,
            "segmenter_ms_median": round(ms, 2), "runs": runs, "threads": torch.get_num_threads(),
            "machine": machine_name()}


# -- command line: fornet bench / bench-segmenter ------------------------------------

def add_bench_arguments(p):
    from ..model import VARIANTS
    p.description = ("Latency of the network vs K, sparse (gather the Top-K regions) and dense (all regions, "
                     "masked) paths, median of N runs, all models and sizes in one run. focus_ms times the Top-K + "
                     "branches stage alone on the same inputs. Baselines without a focus stage get one row per size.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--checkpoint", default=None, help="checkpoint (.pt) to time; default: the packaged model")
    g.add_argument("--variant", nargs="+", choices=sorted(VARIANTS), help="untrained variant(s), e.g. fornet_s ddrnet23_slim")
    p.add_argument("--focus-off", action="store_true", help="also time the focus-off build of each FoR-Net variant")
    p.add_argument("--backend", nargs="+", default=["torch"], choices=("torch", "onnxruntime"),
                   help="runtimes to time side by side (onnxruntime: the exported graph, CPU provider)")
    p.add_argument("--size", type=int, nargs=2, action="append", metavar=("H", "W"),
                   help="input size; repeat for several (default: the model's input size; 512 1024 for a variant)")
    p.add_argument("--topk", type=float, nargs="+", default=None, help="default: 0.1 0.25 0.5 1.0")
    p.add_argument("--runs", type=int, default=20, help="timed runs per setting (median reported); one size's "
                   f"settings are timed in rotating rounds of {ROUNDS_BLOCK} runs each, so all of that size's models "
                   "and ONNX Runtime sessions are held in memory at once")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    p.add_argument("--batch", type=int, default=1, help="images per run")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-channels-last", action="store_true", help="NCHW instead of channels_last")
    p.add_argument("--no-fold-bn", action="store_true", help="keep BatchNorm layers (default: folded into the convs, "
                   "as the Segmenter runs the model)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    e = p.add_argument_group("end to end (--e2e): the Segmenter's stages, per camera size and camera count")
    e.add_argument("--e2e", action="store_true",
                   help="time network (eager), network in a CUDA graph, pre, post and end to end (all maps; labels "
                        "only), medians and p95; --size is the network input (default: the model's), --topk "
                        "default: the model's K")
    e.add_argument("--camera-size", type=int, nargs=2, action="append", metavar=("H", "W"),
                   help="camera image size; repeat for several (default 720 1280 and 1024 2048)")
    e.add_argument("--cameras", type=int, nargs="+", default=[1], help="frames per batch (cameras); several allowed")
    e.add_argument("--precision", default="auto", help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16")
    e.add_argument("--processing", default="auto", choices=("auto", "opencv", "torch"),
                   help="pre/post-processing: auto (torch ops on CUDA, opencv on the CPU)")
    e.add_argument("--no-cuda-graphs", action="store_true", help="no CUDA graph column (and eager end to end)")
    e.add_argument("--mode", default="auto", choices=("auto", "sparse", "dense"),
                   help="focus path (auto: the cheaper one, measured at warm-up as the node does)")


def run_bench(a):
    import json
    from ..errors import FornetError
    if a.e2e:
        return _run_e2e(a)
    a.topk = a.topk or [0.1, 0.25, 0.5, 1.0]
    if a.runs < 1 or any(min(s) < 16 for s in a.size or []) or any(not 0 <= k <= 1 for k in a.topk):
        raise FornetError("--runs must be >= 1, every --size at least 16x16 and every --topk in [0, 1]")
    res = bench_models(a)
    if a.json:
        print(json.dumps(res, indent=2))
        return
    print(f"# {res['machine']}, {res['threads']} threads, {res['device']}, batch {a.batch}, "
          f"{'NCHW' if a.no_channels_last else 'channels_last'}, median of {a.runs}")
    print(f"{'variant':24} {'backend':12} {'size':>9} {'K':>5} {'mode':>7} {'total_ms':>9} {'focus_ms':>9}")
    for r in res["results"]:
        k = "-" if r["topk"] is None else f"{r['topk']:.2f}"
        print(f"{r['variant']:24} {r['backend']:12} {r['size'][0]:>4}x{r['size'][1]:<4} {k:>5} {r['mode']:>7} "
              f"{r['total_ms']:9.2f} {'-' if r['focus_ms'] is None else format(r['focus_ms'], '9.2f'):>9}")


def _run_e2e(a):
    import json
    from ..errors import FornetError
    a.camera_size = a.camera_size or [(720, 1280), (1024, 2048)]
    if (a.runs < 1 or any(min(s) < 16 for s in (a.size or []) + a.camera_size) or min(a.cameras) < 1
            or any(not 0 <= k <= 1 for k in a.topk or [])):
        raise FornetError("--runs and --cameras must be >= 1, every --size/--camera-size at least 16x16 and every "
                          "--topk in [0, 1]")
    if a.backend != ["torch"]:
        raise FornetError("--e2e times the torch backend (ONNX Runtime: fornet bench-segmenter --checkpoint x.onnx)")
    try:
        res = bench_e2e(a)
    except ValueError as e:  # a device or precision this machine cannot run
        raise FornetError(str(e)) from e
    if a.json:
        print(json.dumps(res, indent=2))
        return
    gpu = f", {res['gpu']} (driver {res['driver']}, CUDA {res['cuda']})" if "gpu" in res else ""
    print(f"# {res['machine']}{gpu}, torch {res['torch']}, {res['device']} {res['precision']}, processing "
          f"{res['processing']}, CUDA graphs {'on' if res['cuda_graphs'] else 'off'}; ms median / p95 of {a.runs}")
    cols = ("network", "graph", "pre", "post", "e2e", "e2e_labels")
    print(f"{'variant':16} {'camera':>9} {'input':>9} {'n':>2} {'K':>5} {'path':>6} "
          + " ".join(f"{c:>13}" for c in cols))
    for r in res["results"]:
        cells = [f"{'n/a':>13}" if r[f"{c}_ms"] is None else
                 f"{r[f'{c}_ms']['median']:6.2f}/{r[f'{c}_ms']['p95']:<6.2f}" for c in cols]
        print(f"{r['variant']:16} {r['camera_size'][0]:>4}x{r['camera_size'][1]:<4} {r['input_size'][0]:>4}x"
              f"{r['input_size'][1]:<4} {r['cameras']:>2} {r['topk']:5.2f} {r['path'] or '-':>6} " + " ".join(cells))


def add_segmenter_arguments(p):
    p.description = ("The inference API end to end (resize, network, labels/confidence/importance at the image "
                     "size) on one image, median of N runs.")
    p.add_argument("--checkpoint", default=None, help="checkpoint (.pt) or ONNX model; default: the packaged model")
    p.add_argument("--image-size", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"), help="image size")
    p.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="default: the model's (an ONNX graph's is fixed)")
    p.add_argument("--topk", type=float, default=None, help="K in [0, 1]; default: the model's")
    p.add_argument("--runs", type=int, default=20, help="timed runs (median reported)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")


def run_segmenter(a):
    import json
    from ..errors import FornetError
    if a.runs < 1 or min(a.image_size) < 8 or (a.input_size is not None and min(a.input_size) < 8):
        raise FornetError("--runs must be >= 1 and --image-size/--input-size at least 8x8")
    input_size = tuple(a.input_size) if a.input_size else None
    print(json.dumps(bench_segmenter(a.checkpoint, tuple(a.image_size), input_size, a.topk, a.runs, a.threads), indent=2))
