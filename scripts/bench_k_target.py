"""Issue #27's target "with a latency target, the node meets it at a K at least as accurate as the best
static K that meets it": segmentation_node (torch backend: the controller moves K, which an ONNX graph
cannot) at each static K of --ks, then with latency_target_ms set (K free in [0, 1], starting at the
largest K), on the same synthetic frames, rate and CPU load (--load-procs burners from 1 s on; with
--spell FROM UNTIL only from FROM to UNTIL s: a slow spell). Per run: latency publish -> labels, p50 and
p95 after 5 s of settling (with --spell: from 5 s after the spell); for the controller run also the K it
ran (the share of that window each K was in force, and the last). Accuracy per K is a separate `fornet eval --topk K` (docs/benchmarks.md). One JSON.

usage: python scripts/bench_k_target.py [--ks 0 0.25 0.5 1] [--target-ms T ...] [--static JSON] [--size 720 1280]
                                        [--rate 4] [--seconds 25] [--threads 2] [--load-procs 0]
                                        [--spell FROM UNTIL] [--domain 77]
T defaults to the midpoint of the static runs' p95 at the smallest and the largest K; several T: one
controller run each. --static JSON: take the static runs from an earlier output of this script.
"""
import argparse
import json
import sys

import fornet_ros  # noqa: F401 - first: it sets libgomp's spin count before torch loads libgomp
from fornet_ros.ros.load_step import _load_step_run, latency_phase
from fornet_ros.tools.bench import machine_name
from fornet_ros.tools.synthetic import make_scene

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--checkpoint", default=None, help="default: the packaged model")
p.add_argument("--ks", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
p.add_argument("--target-ms", type=float, nargs="+", default=None)
p.add_argument("--static", default=None, help="the static runs of an earlier output of this script")
p.add_argument("--size", type=int, nargs=2, default=[720, 1280])
p.add_argument("--rate", type=float, default=4.0)
p.add_argument("--seconds", type=float, default=25.0)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--load-procs", type=int, default=0)
p.add_argument("--spell", type=float, nargs=2, default=None, metavar=("FROM", "UNTIL"),
               help="the --load-procs burners run only from FROM to UNTIL s (a slow spell; default 1 burner)")
p.add_argument("--domain", type=int, default=77)
a = p.parse_args()
AFTER_SPELL_S = 5.0  # with --spell: the window judged starts this long after the spell
if a.spell and not 0 <= a.spell[0] < a.spell[1] < a.seconds - AFTER_SPELL_S:
    p.error(f"--spell needs 0 <= FROM < UNTIL < --seconds - {AFTER_SPELL_S:g} (the window judged), got "
            f"{a.spell[0]:g} {a.spell[1]:g}")
if a.spell and not a.load_procs:
    a.load_procs = 1
frames = [make_scene(*a.size, seed=i)[0] for i in range(4)]
STEP_AT_S = a.spell[0] if a.spell else 1.0  # when the --load-procs burners start (none: where settling counts from)


def node_run(params):
    print(" ".join(params), file=sys.stderr, flush=True)
    r = _load_step_run(a.checkpoint, frames, a.rate, a.seconds, a.threads, a.domain, None,
                       ["backend:=torch", *params], STEP_AT_S, a.load_procs, False,
                       load_until_s=a.spell[1] if a.spell else None)
    if a.spell:  # judged after the spell: the same latency series, from AFTER_SPELL_S after it on
        lo = a.spell[1] + AFTER_SPELL_S
        settled = latency_phase(r["latency"], lo)
    else:
        settled, lo = r["after_step_settled"], STEP_AT_S + r["settle_s"]
    return {"params": params, "frames": settled["frames"], "latency_ms_p50": settled["latency_ms_p50"],
            "latency_ms_p95": settled["latency_ms_p95"], "settled_from_s": lo,
            "k": r["k"], "k_controller": r["k_controller"],
            "latency": r["latency"] if a.spell else None}


if a.static:
    static = {float(k): r for k, r in json.load(open(a.static))["static"].items()}
else:
    static = {k: node_run([f"topk_ratio:={k}", "latency_target_ms:=0.0"]) for k in sorted(a.ks)}
lo, hi = static[min(static)]["latency_ms_p95"], static[max(static)]["latency_ms_p95"]
controller = []
for target in a.target_ms or [round((lo + hi) / 2, 1)]:
    ctrl = node_run([f"topk_ratio:={max(static)}", f"latency_target_ms:={target}", "k_min:=0.0", "k_max:=1.0"])
    # K messages come when K changes: the share of the settled window each K was in force
    share, changes, settle_t = {}, ctrl["k"], ctrl["settled_from_s"]
    for i, (t, k) in enumerate(changes):
        t_next = changes[i + 1][0] if i + 1 < len(changes) else a.seconds
        span = min(t_next, a.seconds) - max(t, settle_t)
        if span > 0:
            share[k] = share.get(k, 0.0) + span / (a.seconds - settle_t)
    ctrl.update(target_ms=target, k_time_share_settled={f"{k:g}": round(v, 3) for k, v in sorted(share.items())},
                k_last=changes[-1][1] if changes else None,
                static_ks_meeting_target=[k for k, r in static.items()
                                          if r["latency_ms_p95"] is not None and r["latency_ms_p95"] <= target])
    controller.append(ctrl)
print(json.dumps({"machine": machine_name(), "size": a.size, "rate_hz": a.rate, "seconds": a.seconds,
                  "threads": a.threads, "load_procs": a.load_procs, "spell": a.spell, "static_from": a.static,
                  "static": {str(k): {n: v for n, v in r.items() if n != "k"} for k, r in static.items()},
                  "controller": controller}, indent=1))
