"""Probe (session 8, not a tool): ONNX Runtime's per-node profile of an exported model, 2 threads, 10 runs.
The default's graph as `fornet export` writes it (padded focus convs, dense K = 1, 512x1024):
    python -c "from fornet_ros.inference.export import export_onnx; export_onnx(None, '/tmp/default_512.onnx', size=(512, 1024), topk_ratio=1.0, dense=True)"
    python ort_profile.py /tmp/default_512.onnx > ort_profile_default_512.txt
Kernel ms per run by op type and by node (the profile's 13 runs: 3 warm-up + 10 timed)."""
import json, sys, time, glob, collections
import numpy as np, onnxruntime as ort
path = sys.argv[1]
o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.enable_profiling = True
o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
i = s.get_inputs()[0]
shape = [d if isinstance(d, int) else 1 for d in i.shape]
x = np.random.rand(*shape).astype(np.float32)
for _ in range(3): s.run(None, {i.name: x})
t = []
for _ in range(10):
    a = time.perf_counter(); s.run(None, {i.name: x}); t.append((time.perf_counter() - a) * 1000)
prof = s.end_profiling()
print("median ms", np.median(t), shape)
ev = json.load(open(prof))
per = collections.defaultdict(float); kinds = collections.defaultdict(float); cnt = collections.Counter()
for e in ev:
    if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
        n = e["name"][:-len("_kernel_time")]
        per[(n, e["args"].get("op_name"))] += e["dur"] / 1000 / 13
        kinds[e["args"].get("op_name")] += e["dur"] / 1000 / 13
tot = sum(per.values())
print("total kernel ms/run %.1f" % tot)
for k, v in sorted(kinds.items(), key=lambda x: -x[1])[:12]: print("  %-24s %.2f" % (k, v))
for k, v in sorted(per.items(), key=lambda x: -x[1])[:25]: print("  %-70s %-18s %.2f" % (k[0][:70], k[1], v))
