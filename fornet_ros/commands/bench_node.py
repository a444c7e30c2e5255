"""``fornet bench-node``: segmentation_node over DDS against the model alone, the soak and the load step
(:mod:`fornet_ros.ros.node_bench`, :mod:`fornet_ros.ros.soak`, :mod:`fornet_ros.ros.load_step`)."""

from __future__ import annotations

import json


def add_arguments(p):
    p.description = ("segmentation_node end-to-end latency over DDS (publish -> labels received) vs the model alone "
                     "on the same frames, at a given input rate; above capacity it shows drops and whether latency "
                     "stays bounded. A transport floor (the same frames and outputs through DDS, no model) splits the "
                     "node's time over the model alone into DDS's share and the node's own.")
    p.add_argument("--checkpoint", default=None, help="checkpoint (.pt) or ONNX model; default: the packaged model")
    p.add_argument("--size", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"), help="camera image size")
    p.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"), help="network input size")
    p.add_argument("--rate", type=float, default=5.0, help="input frames per second")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each node run")
    p.add_argument("--threads", type=int, default=None, help="the node's torch CPU threads (default: torch's)")
    p.add_argument("--backend", default="fastest", choices=["fastest", "torch", "onnxruntime", "auto"],
                   help="the node's backend parameter (default: the node's default, fastest); the model alone "
                        "runs the same")
    p.add_argument("--domain", type=int, default=77, help="ROS_DOMAIN_ID for the run")
    p.add_argument("--soak", type=float, default=None, metavar="MINUTES",
                   help="soak instead: run the node this long (costmap on, a CameraInfo per camera), sample its RSS "
                        "every --sample-s s; one JSON with the RSS slope after warm-up, frames in/out/dropped from "
                        "its /diagnostics counters and latency p50/p95 per minute")
    p.add_argument("--cameras", type=int, default=1, help="cameras publishing at --rate each (soak only)")
    p.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling period of the soak (s)")
    p.add_argument("--outputs", nargs="+", default=["labels", "all"], choices=["labels", "all"],
                   help="latency runs: only labels subscribed, and/or every image output subscribed (a frame's "
                        "latency is then publish -> its last output); one node run and one transport-floor run each, one "
                        "model-alone baseline")
    g = p.add_argument_group("load step (issue #15): the latency K controller off vs on")
    g.add_argument("--load-step", type=float, default=None, metavar="SECONDS",
                   help="instead: two runs of --seconds each (fixed K, then the controller on); at this time into each "
                        "run, start --load-procs CPU burners and a second camera")
    g.add_argument("--target-ms", type=float, default=150.0, help="latency_target_ms of the controller run")
    g.add_argument("--topk", type=float, default=0.5, help="K of the fixed run and the controller's start")
    g.add_argument("--k-min", type=float, default=0.05, help="lowest K the controller may choose")
    g.add_argument("--k-max", type=float, default=1.0, help="highest K the controller may choose")
    g.add_argument("--load-procs", type=int, default=1, help="CPU-bound competitor processes started at the step")
    g.add_argument("--no-second-camera", action="store_true", help="the step is the CPU load alone")
    g.add_argument("--plot", default=None, metavar="PNG", help="latency and K vs time of both runs")


def run(a):
    import sys

    from ..errors import FornetError
    from ..inference.checkpoint import read_checkpoint
    from ..ros.load_step import load_step, plot_load_step
    from ..ros.node_bench import bench_node
    from ..ros.soak import soak_node
    if a.rate <= 0 or a.seconds <= 0 or min(a.size) < 16:
        raise FornetError(f"--rate and --seconds must be > 0 and --size at least 16x16, got {a.rate}, {a.seconds}, "
                          f"{tuple(a.size)}")
    if a.soak is not None and (a.soak <= 0 or a.cameras < 1 or a.sample_s <= 0):
        raise FornetError(f"--soak, --cameras and --sample-s must be > 0, got {a.soak}, {a.cameras}, {a.sample_s}")
    if a.soak is None and a.cameras != 1:
        raise FornetError("--cameras other than 1 needs --soak")
    if a.backend == "onnxruntime" and not str(a.checkpoint or "").endswith(".onnx"):
        raise FornetError("--backend onnxruntime needs an ONNX --checkpoint (fornet export); for a .pt, "
                          "fastest runs its ONNX export where that is faster")
    if a.backend == "torch" and str(a.checkpoint or "").endswith(".onnx"):
        raise FornetError("--backend torch needs a .pt --checkpoint; an ONNX model runs on onnxruntime")
    if a.checkpoint and not str(a.checkpoint).endswith(".onnx"):
        read_checkpoint(a.checkpoint)  # a clear error now rather than a node that fails to start
    input_size = tuple(a.input_size) if a.input_size else None
    if a.load_step is not None:
        if a.checkpoint and str(a.checkpoint).endswith(".onnx"):
            raise FornetError("--load-step needs a torch checkpoint: an ONNX model has K fixed at export, so the "
                              "latency controller cannot run")
        if not (0 < a.load_step < a.seconds and a.target_ms > 0 and 0 <= a.k_min <= a.k_max <= 1
                and 0 <= a.topk <= 1 and a.load_procs >= 0):
            raise FornetError("--load-step must lie inside --seconds, --target-ms > 0, 0 <= --k-min <= --k-max <= 1, "
                              "--topk in [0, 1], --load-procs >= 0")
        r = load_step(a.checkpoint, tuple(a.size), a.rate, a.seconds, a.threads, a.domain, input_size, a.target_ms,
                      a.topk, a.k_min, a.k_max, a.load_step, a.load_procs, not a.no_second_camera,
                      progress=lambda m: print(m, file=sys.stderr, flush=True))
        if a.plot:
            plot_load_step(r, a.plot)
        print(json.dumps(r, indent=2))
        return
    if a.soak is not None:
        print(json.dumps(soak_node(a.checkpoint, tuple(a.size), a.rate, a.soak, a.threads, a.domain, input_size,
                                   a.cameras, a.sample_s, progress=lambda m: print(m, file=sys.stderr, flush=True)),
                         indent=2))
        return
    print(json.dumps(bench_node(a.checkpoint, tuple(a.size), a.rate, a.seconds, a.threads, a.domain,
                                input_size, tuple(dict.fromkeys(a.outputs)), a.backend), indent=2))
