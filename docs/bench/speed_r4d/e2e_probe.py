"""Where the e2e labels time goes: stages timed inside the e2e loop vs alone. argv: cv2 threads (0 = default)."""
import sys, time, statistics, json, os
import cv2, numpy as np, torch
from fornet_ros.inference import Segmenter
from fornet_ros.tools.clip import load_clip
torch.set_num_threads(2)
if int(sys.argv[1]): cv2.setNumThreads(int(sys.argv[1]))
seg = Segmenter.from_checkpoint(None, backend=sys.argv[2] if len(sys.argv) > 2 else "torch", device="cpu", log=lambda m: None) if len(sys.argv) > 2 and sys.argv[2] == "fastest" else Segmenter.from_checkpoint(None, backend="torch", device="cpu")
seg.warmup()
street = load_clip(limit=1).images[0]
res = {}
for cam in ((720, 1280), (1024, 2048)):
    frame = cv2.resize(street, (cam[1], cam[0]))
    for _ in range(3): seg([frame], outputs=())
    parts = {"pre": [], "net": [], "post": [], "e2e": []}
    for _ in range(20):
        t0 = time.perf_counter(); x = seg.prepare([frame]); t1 = time.perf_counter(); out = seg.infer(x)
        t2 = time.perf_counter(); seg.finish(out, [cam], ()); t3 = time.perf_counter()
        parts["pre"].append(t1 - t0); parts["net"].append(t2 - t1); parts["post"].append(t3 - t2)
    for _ in range(20):
        t0 = time.perf_counter(); seg([frame], outputs=()); parts["e2e"].append(time.perf_counter() - t0)
    alone = {}
    x = seg.prepare([frame]); out = seg.infer(x)
    for name, fn in (("pre", lambda: seg.prepare([frame])), ("net", lambda: seg.infer(x)), ("post", lambda: seg.finish(out, [cam], ()))):
        fn(); ts = []
        for _ in range(20):
            t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
        alone[name] = round(statistics.median(ts) * 1000, 2)
    res[f"{cam[0]}x{cam[1]}"] = {"in_loop": {k: round(statistics.median(v) * 1000, 2) for k, v in parts.items()}, "alone": alone}
print(json.dumps({"cv2_threads": cv2.getNumThreads(), "omp_wait": os.environ.get("OMP_WAIT_POLICY"), "runtime": getattr(seg.runner, "last", "torch"), **res}))
