"""Training: ``train_one_epoch`` / ``main(args)`` (torchvision references style); validation uses
the one :func:`fornet_ros.training.evaluation.evaluate`. One process or many with ``torchrun`` (DistributedDataParallel; gloo on CPU,
nccl on CUDA). Writes ``<out>/last.pt`` (resumable), ``<out>/best.pt`` (inference checkpoint),
``<out>/log.csv`` and ``<out>/args.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, WeightedRandomSampler
from tqdm import tqdm

from ..classes import membership as label_membership
from ..config import DEFAULT_TOPK, ENCODER_NAMES, PAPER_TOPK
from ..errors import FornetError
from ..inference import Segmenter
from ..inference.checkpoint import (IMAGENET_MEAN, IMAGENET_STD, ModelMeta, make_checkpoint, model_and_meta,
                                   read_checkpoint, resolve_checkpoint)
from ..model import VARIANTS, create_model
from ..model.encoders import NORMALIZATION
from ..model.pretrained import load_backbone_weights, sha256
from .datasets import DATASETS, MixedDataset
from .evaluation import dataset_samples, evaluate
from .losses import fornet_loss
from .recipe import DatasetSpec, build_spec, describe_spec, load_recipe, specs_from_args
from .transforms import TrainTransform


def poly_lr(step: int, total: int, warmup: int, power: float = 0.9) -> float:
    """LR multiplier: linear warm-up, then polynomial decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, 1 - (step - warmup) / max(1, total - warmup)) ** power


def collate(batch, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    imgs = np.stack([b[0] for b in batch]).astype(np.float32)
    labels = np.stack([b[1] for b in batch]).astype(np.int64)
    m, s = np.asarray(mean, np.float32) * 255, np.asarray(std, np.float32) * 255
    x = torch.from_numpy((imgs - m) / s).permute(0, 3, 1, 2)  # NHWC memory: channels_last
    return x, torch.from_numpy(labels)


def train_one_epoch(model, loader, optimizer, scheduler, cfg, steps: int, start_step: int, device,
                    log=None, amp: torch.dtype | None = None, progress: bool = True, scaler=None,
                    dice_weight: float = 0.0, membership=None, memory_format=torch.channels_last):
    """Runs ``steps`` optimisation steps (an "epoch" here is a fixed number of steps). With ``amp`` (a
    dtype: :func:`autocast_dtype`) the forward runs in that autocast; ``scaler`` (torch.amp.GradScaler,
    fp16 only) scales the loss. The losses are computed in fp32 either way."""
    model.train()
    it = iter(loader)
    bar = tqdm(range(start_step, start_step + steps), desc="train", disable=not progress, dynamic_ncols=True)
    for step in bar:
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        x = x.contiguous(memory_format=memory_format)  # a no-op for channels_last (collate's NHWC memory)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            out = model(x)
        loss, parts = fornet_loss({k: v.float() for k, v in out.items()}, y, cfg, dice_weight=dice_weight,
                                  membership=membership)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}")
        row = {"step": step + 1, "lr": optimizer.param_groups[0]["lr"], **{k: v.item() for k, v in parts.items()}}
        bar.set_postfix(loss=f"{row['total']:.3f}", lr=f"{row['lr']:.2e}")
        if log is not None:
            log(row)
    return step + 1


def add_arguments(p):
    """The trainer's options. The shipped models' recipes are the files in ``recipes/``
    (``--recipe``); these defaults are a generic starting point, not any shipped model's recipe."""
    p.description = ("Train FoR-Net or a baseline (AdamW, poly LR with warm-up, OHEM cross-entropy + auxiliary + "
                     "selector losses) on one dataset (--dataset/--data-root) or a mix of several with their own "
                     "label sets (--recipe FILE). Use torchrun for several processes.")
    p.add_argument("--recipe", default=None, metavar="YAML",
                   help="a recipe file: datasets (roots, splits, sampling weights, scale), model and schedule "
                        "(recipes/*.yaml reproduce the shipped models); command-line options override it")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="sets ${FORNET_DATA} for the recipe's dataset roots (scripts/prepare_datasets.py --out)")
    p.add_argument("--one-to-one", action="store_true",
                   help="ablation: train coarse labels as their representative class (CamVid car = car), "
                        "not as the set of classes they cover (the partial-label loss)")
    p.add_argument("--class-balance", type=float, default=0.0, metavar="T",
                   help="repeat-factor sampling: an image whose rarest exactly-labelled class is in a fraction f < T "
                        "of its dataset's images is drawn sqrt(T/f) times as often (LVIS; 0 = off, e.g. 0.3)")
    p.add_argument("--dataset", default="camvid", choices=sorted(DATASETS), help="dataset type (without --recipe)")
    p.add_argument("--data-root", default=None, help="dataset root folder (required without --recipe)")
    p.add_argument("--split", nargs="+", default=["train"], help="split(s) to train on, e.g. train val")
    p.add_argument("--drives", nargs="*", help="CamVid: train only on these drives (name prefixes)")
    p.add_argument("--exclude-drives", nargs="*", help="CamVid: leave these drives out of training")
    p.add_argument("--val-split", default=None, help="split to validate on (default: the first --split)")
    p.add_argument("--val-drives", nargs="*", help="CamVid: validate only on these drives")
    p.add_argument("--val-limit", type=int, default=None, help="validate on at most N images")
    p.add_argument("--variant", default=None, choices=sorted(VARIANTS), help="model variant (default fornet_s)")
    p.add_argument("--topk", type=float, default=None,
                   help=f"Top-K ratio during training (default: the variant's: {DEFAULT_TOPK:g} sparse heads, "
                        f"{PAPER_TOPK:g} paper heads)")
    p.add_argument("--backbone-weights", default=None, metavar="PATH",
                   help="ImageNet weights for a pretrainable backbone (default: the file shipped in its package, "
                        "see fornet_ros/model/pretrained.py; required for resnet101)")
    p.add_argument("--no-pretrained", action="store_true", help="train a pretrainable backbone from scratch")
    p.add_argument("--dice", type=float, default=None,
                   help="weight of the soft Dice loss (default: 1 for the paper and plain heads, as the FoR-Net authors; "
                        "0 for the sparse head and DDRNet, the recipe of the models trained before)")
    p.add_argument("--no-focus", action="store_true", help="ablation: no selector and no branches")
    p.add_argument("--region-px", type=int, default=None, help="override the variant's region side (input pixels)")
    p.add_argument("--refine-stride", type=int, default=None, choices=(2, 4), help="override the variant's refine stride")
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=8, help="per process")
    p.add_argument("--crop", type=int, nargs=2, default=(352, 480), metavar=("H", "W"))
    p.add_argument("--scale", type=float, nargs=2, default=(0.75, 1.5), metavar=("MIN", "MAX"))
    p.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="inference size stored in the checkpoint (default: the first training image's size)")
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--init", default=None,
                   help="start from this checkpoint (its architecture and weights; its training record gains a stage)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="autocast of the forward pass: auto = fp16 on CUDA, fp32 on a CPU; bf16 needs CUDA or a CPU "
                        "with AVX-512 BF16 / AMX (on the 2-core Zen 4 of docs/benchmarks.md a step of the streets "
                        "recipe was no faster: the fp32 loss and backward dominate); fp16 needs CUDA")
    p.add_argument("--no-progress", action="store_true")


def parse_args(argv=None):
    from ..validation import harden  # the same checked types as `fornet train` (torchrun's path)
    p = argparse.ArgumentParser(prog="fornet train")
    add_arguments(p)
    return harden(p, "train").parse_args(argv)


def _setup_distributed(device_arg: str):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and device_arg != "cpu" else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    if device_arg == "auto":
        device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(device_arg)
    return rank, world, device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--precision`` on ``device`` (None: plain fp32). bf16 on a CPU needs
    oneDNN's bf16 kernels (AVX-512 BF16 / AMX): without them it would be slower than fp32, so it is refused."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    if precision == "fp32":
        return None
    if precision == "fp16":
        if device.type != "cuda":
            raise FornetError("--precision fp16 needs a CUDA device; on a CPU use bf16 or fp32")
        return torch.float16
    if device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise FornetError("--precision bf16: this CPU has no bf16 instructions (AVX-512 BF16 or AMX); use fp32")
    return torch.bfloat16


def main(argv=None) -> dict:
    """``python -m fornet_ros.training.train`` (torchrun) and tests: parse ``argv`` and train."""
    return run(parse_args(argv))


def apply_recipe(args):
    """Load ``args.recipe`` (if any) and fill every option still at its parser default from it."""
    if args.data_dir:
        os.environ["FORNET_DATA"] = str(Path(args.data_dir).expanduser().resolve())
    if not args.recipe:
        return None
    p = argparse.ArgumentParser()
    add_arguments(p)
    defaults = {a.dest: a.default for a in p._actions if a.dest != "help"}  # argparse has no public table
    recipe = load_recipe(args.recipe, set(defaults) - {"recipe", "data_dir", "out", "resume"})
    for key, value in recipe.options.items():
        if getattr(args, key) == defaults[key]:
            setattr(args, key, tuple(value) if isinstance(defaults[key], tuple) else value)
    return recipe


def training_record(args, recipe, specs, parts, step, weights_file, previous: dict, amp=None) -> dict:
    """The checkpoint's ``train`` entry, written whole by the trainer: the datasets (with their
    source commit and file counts), the recipe, and every stage (an ``--init`` run appends one).
    ``amp``: the autocast dtype the stage ran in (:func:`autocast_dtype`; None = fp32), recorded
    beside ``--precision`` as given (``auto`` resolves by device)."""
    stage = {"what": f"from {resolve_checkpoint(args.init).name}" if args.init else (
                 f"from ImageNet weights ({weights_file.name})" if weights_file else "from random weights"),
             "iters": args.iters, "step": step, "lr": args.lr, "crop": list(args.crop), "batch_size": args.batch_size,
             "seed": args.seed, "topk": args.topk, "partial_labels": not args.one_to_one,
             "class_balance": args.class_balance, "precision": args.precision,
             "dtype": {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(amp, "fp32"),
             "recipe": recipe.path.name if recipe else None,
             "datasets": [describe_spec(sp, ds) for sp, ds in zip(specs, parts)]}
    stages = list(previous.get("stages") or [])
    record = {"stages": stages + [stage], "total_iters": int(previous.get("total_iters") or 0) + step,
              "recipe": recipe.text if recipe else None, "step": step, "iters": args.iters,
              "datasets": stage["datasets"],
              # what `fornet eval` compares to warn when a model is scored on its own training data
              "dataset": specs[0].type if len(specs) == 1 else "mix", "splits": specs[0].splits,
              "drives": specs[0].drives, "exclude_drives": specs[0].exclude_drives,
              "backbone_weights": weights_file.name if weights_file else previous.get("backbone_weights"),
              "backbone_weights_sha256": sha256(weights_file) if weights_file else previous.get("backbone_weights_sha256")}
    return record


def run(args) -> dict:
    recipe = apply_recipe(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, device = _setup_distributed(args.device)
    amp = autocast_dtype(args.precision, device)  # refused before any data is read
    torch.manual_seed(args.seed + rank)
    random.seed(args.seed + rank)
    out_dir = Path(args.out)
    is_main = rank == 0
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    specs, val_spec = (recipe.datasets, recipe.val) if recipe else specs_from_args(args)
    parts = [build_spec(sp, TrainTransform(args.crop, sp.scale or args.scale, base_scale=sp.base_scale,
                                           seed=args.seed + rank + 1000 * i), partial=not args.one_to_one, cache=True)
             for i, sp in enumerate(specs)]
    partial_labels = not args.one_to_one and any(d.space is not None and not d.space.exact for d in parts)
    train_ds = parts[0] if len(parts) == 1 else MixedDataset(parts, [sp.weight for sp in specs])
    val_spec = val_spec or DatasetSpec(specs[0].type, specs[0].root, specs[0].splits[:1], **specs[0].kwargs())
    val_ds = build_spec(val_spec)
    val_limit = val_spec.limit or args.val_limit
    membership = torch.from_numpy(label_membership(len(train_ds.classes))).to(device) if partial_labels else None
    input_size = tuple(args.input_size) if args.input_size else (
        None if args.init else tuple(parts[0].load(0)[1].shape))

    overrides = {k: v for k, v in (("region_px", args.region_px), ("refine_stride", args.refine_stride)) if v}
    weights_file, init_meta, previous = None, None, {}
    if args.init:
        refused = [f"--{k.replace('_', '-')}" for k in ("variant", "region_px", "refine_stride", "backbone_weights")
                   if getattr(args, k)] + (["--no-focus"] if args.no_focus else []) + (
                   ["--no-pretrained"] if args.no_pretrained else [])
        if refused:
            raise FornetError(f"--init takes the model from the checkpoint; {', '.join(refused)} cannot change it "
                              "(drop them, or train from scratch without --init)")
        init_ckpt = read_checkpoint(args.init)  # read once: the model, its metadata and its training record
        model, init_meta = model_and_meta(init_ckpt, args.init)
        model.train()
        if args.topk is not None:  # the training K is a run-time setting of the model: honoured
            model.cfg = replace(model.cfg, topk_ratio=float(args.topk))  # ModelConfig is frozen
            model.topk_ratio = model.cfg.topk_ratio
        previous = init_ckpt.get("train") or {}
        input_size = input_size or tuple(init_meta.input_size)
    else:
        args.variant = args.variant or "fornet_s"
        model = create_model(args.variant, num_classes=len(train_ds.classes), topk_ratio=args.topk,
                             **({"focus": False} if args.no_focus else {}), **overrides)
        if model.cfg.backbone in ENCODER_NAMES and not args.no_pretrained:
            weights_file = load_backbone_weights(model.backbone, model.cfg.backbone, args.backbone_weights)
    if args.backbone_weights and weights_file is None:
        raise FornetError("--backbone-weights needs a pretrainable backbone (not the light one), without "
                          "--no-pretrained or --init")
    cfg = model.cfg
    if args.dice is None:
        args.dice = 1.0 if cfg.head in ("paper", "plain") else 0.0
    if is_main:  # once the defaults that depend on the model (--dice) are resolved
        (out_dir / "args.json").write_text(json.dumps(vars(args), indent=2))
        if recipe:
            (out_dir / "recipe.yaml").write_text(recipe.text)
    mean, std = NORMALIZATION[cfg.backbone] if cfg.arch == "fornet" else (IMAGENET_MEAN, IMAGENET_STD)
    if init_meta is None:
        meta = ModelMeta(tuple(train_ds.classes), tuple(tuple(c) for c in train_ds.palette), mean=mean, std=std,
                         input_size=tuple(input_size))
    else:  # the checkpoint's classes and normalisation; the input size this run stores
        meta = replace(init_meta, input_size=tuple(input_size))
    # oneDNN's bf16 backward of a channels_last dilated conv returns NaN weight gradients (torch 2.13,
    # the refiner's dilation-3 branch; test/test_data_train.py checks a bf16 run stays finite): NCHW there
    memory_format = torch.contiguous_format if amp == torch.bfloat16 and device.type == "cpu" else torch.channels_last
    model = model.to(device, memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: poly_lr(s, args.iters, args.warmup))
    step, best = 0, -1.0
    if args.resume and (out_dir / "last.pt").is_file():
        state = torch.load(out_dir / "last.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, best = state["step"], state["best_miou"]
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if isinstance(train_ds, MixedDataset) or args.class_balance > 0:  # each rank draws its own stream
        # per-dataset probabilities, and per image with --class-balance
        sampler = WeightedRandomSampler(torch.from_numpy(train_ds.sample_weights(args.class_balance)),
                                        num_samples=len(train_ds),
                                        generator=torch.Generator().manual_seed(args.seed + rank))
    else:
        sampler = DistributedSampler(train_ds, seed=args.seed) if world > 1 else RandomSampler(train_ds)
    loader = DataLoader(train_ds, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers,
                        collate_fn=partial(collate, mean=mean, std=std), drop_last=len(train_ds) >= args.batch_size * world)

    log_path = out_dir / "log.csv"
    fields = ["step", "lr", "main", "dice", "aux", "selector", "total", "val_miou", "val_boundary_iou", "val_thin_miou", "time_s"]
    t_start = time.time()

    def log(row):
        if not is_main:
            return
        new = not log_path.exists()
        with open(log_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({**row, "time_s": round(time.time() - t_start, 1)})

    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    result = {}
    while step < args.iters:
        n = min(args.eval_every, args.iters - step)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(step)
        step = train_one_epoch(net, loader, optimizer, scheduler, cfg, n, step, device, log, amp,
                               progress=is_main and not args.no_progress, scaler=scaler, dice_weight=args.dice,
                               membership=membership, memory_format=memory_format)
        if is_main:
            seg = Segmenter(model, meta, device=str(device), precision="fp32")
            result = evaluate(seg, dataset_samples(val_ds, val_limit), progress=not args.no_progress,
                              limit=val_limit, prediction_lut=val_ds.prediction_lut)
            model.train()
            ckpt = make_checkpoint(model, meta, train=training_record(args, recipe, specs, parts, step, weights_file,
                                                                     previous, amp))
            ckpt["train"]["val"] = {k: result[k] for k in ("miou", "boundary_iou", "thin_miou", "pixel_accuracy")}
            log({"step": step, "val_miou": result["miou"], "val_boundary_iou": result["boundary_iou"],
                 "val_thin_miou": result["thin_miou"]})
            if result["miou"] > best:
                best = result["miou"]
                torch.save(ckpt, out_dir / "best.pt")
            torch.save({**ckpt, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "step": step, "best_miou": best}, out_dir / "last.pt")
            print(json.dumps({"step": step, "val_miou": round(result["miou"], 4),
                              "val_boundary_iou": result["boundary_iou"], "val_thin_miou": result["thin_miou"]}), flush=True)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return result


if __name__ == "__main__":
    main()
