"""Does thread spinning after the network slow the CPU steps around it? One process per setting
(GOMP_SPINCOUNT must be set before torch loads libgomp). argv: torch|ort  (ORT spin stop from PROBE_SPINSTOP=0|1).
spin_probe_results.jsonl ran before either became the default: its rows without a setting are libgomp's and ORT's defaults
(run_spin.sh now names them: GOMP_SPINCOUNT=300000, PROBE_SPINSTOP=0)."""
import os, sys, json, time, statistics
which = sys.argv[1]
import cv2, numpy as np, torch
import onnxruntime as ort
from fornet_ros.inference import runtime
if os.environ.get("PROBE_SPINSTOP") in ("0", "1"):  # ORT's spinning after a run: stopped (1, the default since) or not (0)
    _so = runtime.session_options
    def session_options(threads):
        so = _so(threads); so.add_session_config_entry("session.force_spinning_stop", os.environ["PROBE_SPINSTOP"]); return so
    runtime.session_options = session_options
from fornet_ros.inference import Segmenter
from fornet_ros.tools.clip import load_clip
torch.set_num_threads(2)
if which == "torch":
    seg = Segmenter.from_checkpoint(None, backend="torch", device="cpu")
    seg.warmup()
else:
    seg = Segmenter.from_checkpoint("/tmp/fornet_default_dense.onnx", backend="onnxruntime", device="cpu")
street = load_clip(limit=1).images[0]
res = {"which": which, "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"), "ort_spinstop": os.environ.get("PROBE_SPINSTOP")}
def med(fn, n=25):
    fn(); ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(ts), 2)
for cam in ((720, 1280), (1024, 2048)):
    frame = cv2.resize(street, (cam[1], cam[0]))
    x = seg.prepare([frame]); out = seg.infer(x)
    r = {"net": med(lambda: seg.infer(x)), "pre": med(lambda: seg.prepare([frame])),
         "post": med(lambda: seg.finish(out, [cam], ())), "e2e": med(lambda: seg([frame], outputs=()), 40)}
    r["e2e_over_net"] = round(r["e2e"] / r["net"], 3)
    res[f"{cam[0]}x{cam[1]}"] = r
print(json.dumps(res))
