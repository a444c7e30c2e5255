"""Sub-commands of ``fornet``; each takes its own argv and has its own ``--help``.

Heavy imports (torch, the model) happen inside the commands so that ``fornet --help`` is quick.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")


def _fail(msg: str) -> int:
    print(f"fornet: error: {msg}", file=sys.stderr)
    return 2


def _model_args(p, checkpoint_help="checkpoint (.pt) or exported model (.onnx); default: the packaged CamVid model"):
    p.add_argument("--checkpoint", default=None, help=checkpoint_help)
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"),
                   help="auto: onnxruntime for a .onnx, torch otherwise")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--precision", default="auto", help="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16")
    p.add_argument("--topk", type=float, default=None, help="Top-K ratio of refined regions (default: the checkpoint's)")
    p.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="size the network sees (default: the checkpoint's); outputs keep the image size")


def _segmenter(a):
    from .inference import Segmenter
    return Segmenter.from_checkpoint(a.checkpoint, backend=a.backend, device=a.device, precision=a.precision, input_size=a.input_size, topk_ratio=a.topk)


def cmd_init(argv):
    from .model import VARIANTS
    p = argparse.ArgumentParser(prog="fornet init", description="Write a checkpoint with untrained (randomly "
                                "initialised) weights: for tests, and as the start of training.")
    p.add_argument("--variant", default="fornet_s", choices=sorted(VARIANTS))
    p.add_argument("--out", required=True, help="output .pt path")
    p.add_argument("--num-classes", type=int, default=19)
    p.add_argument("--topk", type=float, default=0.25)
    p.add_argument("--no-focus", action="store_true", help="ablation without selector and branches")
    p.add_argument("--input-size", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    import torch
    from .checkpoint import ModelMeta, save_checkpoint
    from .model import create_model
    torch.manual_seed(a.seed)
    model = create_model(a.variant, num_classes=a.num_classes, topk_ratio=a.topk, focus=not a.no_focus)
    path = save_checkpoint(a.out, model, ModelMeta.default(a.num_classes, tuple(a.input_size)), untrained=True)
    print(f"wrote untrained {a.variant} ({a.num_classes} classes, K={a.topk}) to {path}")


def model_stats(model, size=(512, 1024)) -> dict:
    """Parameters and forward GFLOPs (torch.utils.flop_counter; FLOP = 2 x multiply-add) at ``size``,
    dense path with K = 1 and sparse path at the model's K."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.zeros(1, 3, *size)
    out = {"params_m": sum(p.numel() for p in model.parameters()) / 1e6}
    model.eval()
    for key, kw in (("gflops_k1", dict(topk_ratio=1.0, mode="dense")), ("gflops_at_k", dict(mode="sparse"))):
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(x, **kw)
        out[key] = fc.get_total_flops() / 1e9
    return out


def cmd_info(argv):
    from .model import VARIANTS
    p = argparse.ArgumentParser(prog="fornet info", description="Variant, classes, parameters and GFLOPs "
                                "(torch's flop counter) of a checkpoint or a named variant.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--checkpoint", default=None, help="checkpoint (.pt); default: the packaged model")
    g.add_argument("--variant", choices=sorted(VARIANTS), help="describe an untrained variant instead")
    p.add_argument("--size", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"))
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    from .checkpoint import CheckpointError, model_from_checkpoint, read_checkpoint
    from .model import create_model
    if a.variant:
        model, ckpt = create_model(a.variant), {}
    else:
        try:
            ckpt = read_checkpoint(a.checkpoint)
            model = model_from_checkpoint(ckpt)
        except CheckpointError as e:
            return _fail(str(e))
    info = {"variant": model.cfg.variant, "config": model.cfg.to_dict(), "size": list(a.size),
            **model_stats(model, tuple(a.size)), "classes": ckpt.get("classes"), "input_size": ckpt.get("input_size"),
            "train": ckpt.get("train")}
    if a.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"variant      {info['variant']}  (K={model.cfg.topk_ratio}, focus={model.cfg.focus}, "
              f"regions {model.cfg.region_px}px refined at stride {model.cfg.refine_stride})")
        print(f"parameters   {info['params_m']:.2f} M")
        print(f"GFLOPs       {info['gflops_at_k']:.2f} at K={model.cfg.topk_ratio} (sparse), "
              f"{info['gflops_k1']:.2f} at K=1 (dense), input {a.size[0]}x{a.size[1]}")
        if info["classes"]:
            print(f"classes      {len(info['classes'])}: {', '.join(info['classes'])}")
            print(f"input size   {info['input_size']}")


def _list_images(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    return [path]


def cmd_predict(argv):
    p = argparse.ArgumentParser(prog="fornet predict", description="Segment an image or a folder of images. "
                                "Writes per image <stem>_labels.png (mono8 train IDs, image size), "
                                "<stem>_color.png (palette overlay) and <stem>_importance.png (selector heat-map).")
    p.add_argument("input", help="image file or folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the palette colours")
    _model_args(p)
    a = p.parse_args(argv)
    import cv2
    import numpy as np
    from tqdm import tqdm
    from .checkpoint import CheckpointError
    from .classes import colorize
    from .data.datasets import DatasetError, read_rgb
    src = Path(a.input)
    if not src.exists():
        return _fail(f"input not found: {src}")
    images = _list_images(src)
    if not images:
        return _fail(f"no images ({', '.join(IMAGE_EXTS)}) in {src}")
    try:
        seg = _segmenter(a)
    except (CheckpointError, ValueError) as e:
        return _fail(str(e))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in tqdm(images, desc="predict", disable=len(images) < 2):
        try:
            img = read_rgb(path)
        except DatasetError as e:
            print(f"fornet: skipping {path}: {e}", file=sys.stderr)
            continue
        r = seg(img)
        color = colorize(r.labels, seg.palette)
        overlay = (img * (1 - a.alpha) + color * a.alpha).astype(np.uint8)
        heat = cv2.applyColorMap((r.importance * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
        cv2.imwrite(str(out / f"{path.stem}_labels.png"), r.labels)
        cv2.imwrite(str(out / f"{path.stem}_color.png"), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(out / f"{path.stem}_importance.png"), heat)
    print(f"wrote {len(images)} prediction(s) to {out}")


def cmd_bench(argv):
    from .model import VARIANTS
    p = argparse.ArgumentParser(prog="fornet bench", description="Latency of the network vs K, sparse (gather "
                                "the Top-K regions) and dense (all regions, masked) paths, median of N runs, all "
                                "models and sizes in one run. focus_ms times the Top-K + branches stage alone on "
                                "the same inputs. Baselines without a focus stage get one row per size.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--checkpoint", default=None)
    g.add_argument("--variant", nargs="+", choices=sorted(VARIANTS), help="untrained variant(s), e.g. fornet_s ddrnet23_slim")
    p.add_argument("--focus-off", action="store_true", help="also time the focus-off build of each FoR-Net variant")
    p.add_argument("--size", type=int, nargs=2, action="append", metavar=("H", "W"),
                   help="input size; repeat for several (default 512 1024)")
    p.add_argument("--topk", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    p.add_argument("--runs", type=int, default=20, help="timed runs per setting (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-channels-last", action="store_true", help="NCHW instead of channels_last")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    a.size = a.size or [(512, 1024)]
    from .bench import bench_models
    res = bench_models(a)
    if a.json:
        print(json.dumps(res, indent=2))
        return
    print(f"# {res['machine']}, {res['threads']} threads, {res['device']}, batch {a.batch}, "
          f"{'NCHW' if a.no_channels_last else 'channels_last'}, median of {a.runs}")
    print(f"{'variant':24} {'size':>9} {'K':>5} {'mode':>7} {'total_ms':>9} {'focus_ms':>9}")
    for r in res["results"]:
        k = "-" if r["topk"] is None else f"{r['topk']:.2f}"
        print(f"{r['variant']:24} {r['size'][0]:>4}x{r['size'][1]:<4} {k:>5} {r['mode']:>7} {r['total_ms']:9.2f} "
              f"{r['focus_ms']:9.2f}")


def cmd_bench_segmenter(argv):
    p = argparse.ArgumentParser(prog="fornet bench-segmenter", description="The inference API end to end "
                                "(resize, network, labels/confidence/importance at the image size) on one image, "
                                "median of N runs.")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--image-size", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"))
    p.add_argument("--input-size", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"))
    p.add_argument("--topk", type=float, default=None)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    from .bench import bench_segmenter
    print(json.dumps(bench_segmenter(a.checkpoint, tuple(a.image_size), tuple(a.input_size), a.topk, a.runs,
                                     a.threads), indent=2))


def cmd_bench_costmap(argv):
    p = argparse.ArgumentParser(prog="fornet bench-costmap", description="Per-frame ground projection time of a "
                                "label image into the default 5 costmap layers (lookup precomputed), and the "
                                "one-off lookup build time (median of N runs).")
    p.add_argument("--size", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"))
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--grid", type=int, nargs=2, default=(400, 400), metavar=("W", "H"), help="cells")
    p.add_argument("--resolution", type=float, default=0.1)
    a = p.parse_args(argv)
    from .bench import bench_costmap
    print(json.dumps(bench_costmap(tuple(a.size), a.runs, tuple(a.grid), a.resolution), indent=2))


def cmd_bench_node(argv):
    p = argparse.ArgumentParser(prog="fornet bench-node", description="segmentation_node end-to-end latency over "
                                "DDS (publish -> labels received) vs the model alone on the same frames, at a given "
                                "input rate; above capacity it shows drops and whether latency stays bounded.")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--size", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"), help="camera image size")
    p.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"), help="network input size")
    p.add_argument("--rate", type=float, default=5.0, help="input frames per second")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--domain", type=int, default=77, help="ROS_DOMAIN_ID for the run")
    a = p.parse_args(argv)
    from .ros.node_bench import bench_node
    print(json.dumps(bench_node(a.checkpoint, tuple(a.size), a.rate, a.seconds, a.threads, a.domain,
                                tuple(a.input_size) if a.input_size else None), indent=2))


def cmd_export(argv):
    p = argparse.ArgumentParser(prog="fornet export", description="Export to ONNX (dynamic batch; H, W and K fixed "
                                "at export) with the model's metadata inside, so the .onnx alone runs the node. "
                                "Default: the sparse graph (TopK, region gather, branches on the K regions, "
                                "ScatterND): compute stays proportional to K. Outputs: logits, importance, selected.")
    p.add_argument("--checkpoint", default=None, help="checkpoint (.pt); default: the packaged model")
    p.add_argument("--onnx", required=True, help="output .onnx path")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="default: checkpoint input size")
    p.add_argument("--topk", type=float, default=None, help="K baked into the graph (default: the checkpoint's)")
    p.add_argument("--dense", action="store_true", help="export the dense-masked path (same numbers, cost independent of K)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    a = p.parse_args(argv)
    from .checkpoint import CheckpointError
    from .export import export_onnx
    try:
        info = export_onnx(a.checkpoint, a.onnx, size=a.size, topk_ratio=a.topk, dense=a.dense, opset=a.opset,
                           check=not a.no_check)
    except CheckpointError as e:
        return _fail(str(e))
    print(json.dumps(info))


def cmd_eval(argv):
    p = argparse.ArgumentParser(prog="fornet eval", description="Score a model on a dataset split: mIoU "
                                "(classes present in the ground truth), per-class IoU, pixel accuracy, boundary IoU "
                                "(Cheng et al. 2021, band of --boundary-px), thin-structure mIoU, hard-region recall "
                                "(share of wrong pixels inside the Top-K regions), throughput.")
    p.add_argument("--dataset", default="camvid", choices=["camvid", "cityscapes", "folder"])
    p.add_argument("--data-root", required=True)
    p.add_argument("--split", default="val", help="any split folder under the root (CamVid: train, val, test)")
    p.add_argument("--drives", nargs="*", help="CamVid: only these drives (name prefixes)")
    p.add_argument("--boundary-px", type=int, default=3)
    p.add_argument("--limit", type=int, default=None, help="at most N images")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _model_args(p)
    a = p.parse_args(argv)
    from .checkpoint import CheckpointError
    from .data import build_dataset
    from .data.datasets import DatasetError
    from .evaluation import dataset_samples, evaluate
    try:
        seg = _segmenter(a)
        ds = build_dataset(a.dataset, a.data_root, a.split, **({"drives": a.drives} if a.drives else {}))
        res = evaluate(seg, dataset_samples(ds, a.limit), boundary_px=a.boundary_px, progress=not a.json, limit=a.limit)
    except (CheckpointError, DatasetError, ValueError) as e:
        return _fail(str(e))
    res.update(dataset=a.dataset, split=a.split)
    if a.json:
        print(json.dumps(res))
        return
    print(f"mIoU {res['miou']:.4f}  pixel acc {res['pixel_accuracy']:.4f}  boundary IoU {res['boundary_iou']:.4f}  "
          f"thin mIoU {res['thin_miou']}  hard-region recall {res['hard_region_recall']}")
    for k, v in res["per_class_iou"].items():
        print(f"  {k:15} {v:.4f}")


def cmd_bag(argv):
    p = argparse.ArgumentParser(prog="fornet bag", description="rosbag2 tools (pure-Python rosbags; no ROS "
                                "distro needed). Bags hold <cam>/image_raw, <cam>/camera_info and "
                                "<cam>/ground_truth/labels (mono8 train IDs).")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = sub.add_parser("from-cityscapes", help="Cityscapes leftImg8bit/ + gtFine/ + camera/ -> bag")
    c.add_argument("root", help="Cityscapes root (holds leftImg8bit/, gtFine/, camera/)")
    c.add_argument("--split", default="val")
    c.add_argument("--city", default=None)
    c.add_argument("--sequence", action="store_true", help="read leftImg8bit_sequence/ (ground truth where it exists)")
    c.add_argument("--rate", type=float, default=17.0, help="frame rate of the stamps (Hz)")
    f = sub.add_parser("from-folder", help="an image folder (+ labels) -> bag, e.g. CamVid")
    f.add_argument("images")
    f.add_argument("--labels", default=None, help="label folder (same file stems, .png)")
    f.add_argument("--mapping", default="trainid", choices=["trainid", "camvid", "cityscapes"],
                   help="what label values mean (mapped to Cityscapes train IDs)")
    f.add_argument("--rate", type=float, default=10.0)
    for q in (c, f):
        q.add_argument("--out", required=True, help="output bag folder")
        q.add_argument("--limit", type=int, default=None, help="at most N frames")
        q.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"])
        q.add_argument("--compressed", action="store_true", help="CompressedImage (png) instead of Image")
        q.add_argument("--camera", default="camera", help="camera namespace of the topics")
    pl = sub.add_parser("play", help="publish a bag with rclpy at recorded timing")
    pl.add_argument("bag")
    pl.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    pl.add_argument("--loop", action="store_true")
    pl.add_argument("--clock", action="store_true", help="publish /clock (for use_sim_time)")
    pl.add_argument("--topics", nargs="*", default=None)
    pl.add_argument("--wait-for-subscribers", type=float, default=5.0, metavar="SECONDS",
                    help="wait up to this long for subscribers on the image topics before playing")
    e = sub.add_parser("eval", help="segment every frame and score against <cam>/ground_truth/labels")
    e.add_argument("bag")
    e.add_argument("--camera", default=None)
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--boundary-px", type=int, default=3)
    e.add_argument("--json", action="store_true")
    _model_args(e)
    i = sub.add_parser("info", help="topics, types and message counts")
    i.add_argument("bag")
    a = p.parse_args(argv)
    from .bags import BagError
    try:
        return _bag_action(a)
    except BagError as err:
        return _fail(str(err))


def _bag_action(a):
    from . import bags
    if a.action == "from-cityscapes":
        print(json.dumps(bags.from_cityscapes(a.root, a.out, a.split, a.city, a.limit, a.storage, a.compressed,
                                              a.camera, a.sequence, a.rate)))
    elif a.action == "from-folder":
        print(json.dumps(bags.from_folder(a.images, a.out, a.labels, a.mapping, a.limit, a.storage, a.compressed,
                                          a.camera, a.rate)))
    elif a.action == "info":
        r = bags.open_reader(a.bag)
        try:
            print(json.dumps({"duration_s": r.duration / 1e9, "messages": r.message_count, "topics": {
                c.topic: {"type": c.msgtype, "count": c.msgcount} for c in r.connections}}, indent=2))
        finally:
            r.close()
    elif a.action == "play":
        from .ros.bag_player import play
        n = play(a.bag, a.rate, a.loop, a.clock, a.topics, wait_for_subscribers=a.wait_for_subscribers)
        print(f"published {n} messages")
    elif a.action == "eval":
        from .checkpoint import CheckpointError
        try:
            seg = _segmenter(a)
        except (CheckpointError, ValueError) as err:
            return _fail(str(err))
        res = bags.evaluate_bag(seg, a.bag, a.camera, a.limit, a.boundary_px, progress=not a.json)
        if a.json:
            print(json.dumps(res))
        else:
            print(f"{res['images']} frames ({res['scored']} with ground truth), {res['images_per_s']:.2f} frames/s, "
                  f"mIoU {res.get('miou')}")


def cmd_synth(argv):
    p = argparse.ArgumentParser(prog="fornet synth", description="Write procedural street scenes with exact "
                                "labels in the Cityscapes layout (leftImg8bit/, gtFine/, camera/).")
    p.add_argument("--out", required=True)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    p.add_argument("--split", default="val")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    from .synthetic import write_cityscapes_like
    cam = write_cityscapes_like(a.out, a.frames, tuple(a.size), a.split, seed=a.seed)
    print(json.dumps({"out": a.out, "frames": a.frames, "camera": cam}))


def cmd_demo(argv):
    p = argparse.ArgumentParser(prog="fornet demo", description="The whole pipeline through real DDS: make (or "
                                "take) a bag, start segmentation_node, replay the bag into it, record its outputs "
                                "and write a report (index.html/index.md, summary.json, images).")
    p.add_argument("--input", default=None, help="rosbag2 folder, Cityscapes root or image folder "
                   "(default: procedural scenes made by fornet itself)")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--checkpoint", default=None, help="default: the packaged model")
    p.add_argument("--frames", type=int, default=12, help="frames to generate / take")
    p.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"), help="generated frame size")
    p.add_argument("--rate", type=float, default=1.0, help="bag playback speed factor")
    p.add_argument("--timeout", type=float, default=180.0)
    p.add_argument("--allow-untrained", action="store_true", help="run with random weights if no checkpoint loads")
    a = p.parse_args(argv)
    from .bags import BagError
    from .ros.demo import run_demo
    try:
        s = run_demo(a.out, a.input, a.checkpoint, a.frames, tuple(a.size), a.rate, a.timeout,
                     allow_untrained=a.allow_untrained)
    except (BagError, RuntimeError) as e:
        return _fail(str(e))
    print(json.dumps({k: s[k] for k in ("frames_in_bag", "frames_segmented", "frames_scored")} |
                     {"miou": (s["metrics"] or {}).get("miou"), "report": str(Path(a.out) / "index.html")}))


def cmd_train(argv):
    from .train import main
    main(argv)


COMMANDS = {
    "init": ("write a checkpoint with untrained weights", cmd_init),
    "info": ("variant, parameters, GFLOPs of a checkpoint or variant", cmd_info),
    "predict": ("segment images: label PNG, colour overlay, importance heat-map", cmd_predict),
    "bench": ("latency vs K, sparse vs dense, median of N runs", cmd_bench),
    "bench-segmenter": ("the inference API end to end on one image (resize, network, outputs)", cmd_bench_segmenter),
    "bench-costmap": ("ground projection time per frame and lookup build time", cmd_bench_costmap),
    "bench-node": ("node end-to-end latency vs the model alone; overload behaviour", cmd_bench_node),
    "export": ("export to ONNX and check it in onnxruntime", cmd_export),
    "train": ("train FoR-Net (AdamW, poly LR, OHEM; torchrun for several processes)", cmd_train),
    "eval": ("score a model on a dataset split (JSON with --json)", cmd_eval),
    "bag": ("rosbag2: from-cityscapes, from-folder, play, eval, info", cmd_bag),
    "demo": ("the whole pipeline through DDS with a report (index.html, summary.json)", cmd_demo),
    "synth": ("write procedural Cityscapes-format scenes (exact labels, camera JSON)", cmd_synth),
}
