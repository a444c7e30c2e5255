import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fornet_ros.inference.checkpoint import load_model, read_checkpoint
from fornet_ros.classes import IGNORE_INDEX
from fornet_ros.training.datasets import CamVid, FolderDataset, build_dataset
from fornet_ros.training.transforms import TrainTransform
from fornet_ros.training.datasets import DatasetError
from fornet_ros.tools.synthetic import make_scene, write_camvid_like
from fornet_ros.training.train import main as train_main, poly_lr


@pytest.fixture
def camvid_root(tmp_path):
    return write_camvid_like(tmp_path / "camvid", n=6, size=(96, 128))


def test_camvid_mapping_and_drives(camvid_root):
    ds = CamVid(camvid_root, "train")
    img, lab = ds[0]
    _, truth = make_scene(96, 128, seed=0)
    assert img.shape == (96, 128, 3) and (lab == truth).mean() > 0.99  # CamVid ids -> train IDs
    held = CamVid(camvid_root, "train", drives=["0006R0"])
    rest = CamVid(camvid_root, "train", exclude_drives=["0006R0"])
    assert len(held) == 3 and len(rest) == 3
    assert all(p[0].name.startswith("0006R0") for p in held.pairs)


def test_dataset_errors(tmp_path, camvid_root):
    with pytest.raises(DatasetError, match="folder not found"):
        CamVid(tmp_path / "nope", "train")
    with pytest.raises(DatasetError, match="unknown dataset"):
        build_dataset("kitti", tmp_path, "train")
    os.remove(next((camvid_root / "trainannot").iterdir()))
    with pytest.raises(DatasetError, match="without a label"):
        CamVid(camvid_root, "train")
    # a label value that CamVid does not define
    import cv2
    bad = camvid_root / "valannot" / sorted(os.listdir(camvid_root / "valannot"))[0]
    cv2.imwrite(str(bad), np.full((96, 128), 40, np.uint8))
    with pytest.raises(DatasetError, match="unexpected values"):
        CamVid(camvid_root, "val").load(0)
    with pytest.raises(DatasetError, match="classes.yaml"):
        FolderDataset(tmp_path, "train")


def test_train_transform_keeps_pairs_aligned():
    img, lab = make_scene(96, 128, seed=1)
    t = TrainTransform(crop=(64, 160), scale=(0.9, 1.1), jitter=0.0, seed=0)
    out_img, out_lab = t(img, lab)
    assert out_img.shape == (64, 160, 3) and out_lab.shape == (64, 160)
    assert (out_lab == IGNORE_INDEX).any()  # padded width is ignored
    assert out_img.dtype == np.float32 and out_lab.dtype == np.uint8


def test_poly_lr():
    assert poly_lr(0, 100, 10) == pytest.approx(0.1)
    assert poly_lr(10, 100, 10) == pytest.approx(1.0)
    assert poly_lr(100, 100, 10) == 0.0


def _train_args(root, out, iters, extra=()):
    return ["--dataset", "camvid", "--data-root", str(root), "--iters", str(iters), "--eval-every", str(iters),
            "--batch-size", "4", "--crop", "64", "96", "--scale", "0.9", "1.1", "--warmup", "2", "--lr", "5e-3",
            "--out", str(out), "--no-progress", "--val-split", "val", *extra]


def test_training_reduces_loss_and_writes_loadable_checkpoint(camvid_root, tmp_path):
    torch.manual_seed(0)
    res = train_main(_train_args(camvid_root, tmp_path / "run", 30))
    import csv
    with open(tmp_path / "run" / "log.csv") as f:
        losses = [float(r["total"]) for r in csv.DictReader(f) if r["total"]]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert 0 <= res["miou"] <= 1 and "boundary_iou" in res
    model, meta = load_model(tmp_path / "run" / "best.pt")
    assert meta.input_size == (96, 128) and read_checkpoint(tmp_path / "run" / "best.pt")["train"]["step"] == 30
    # resume continues from the saved step
    train_main(_train_args(camvid_root, tmp_path / "run", 32) + ["--resume"])
    steps = [int(l.split(",")[0]) for l in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]]
    assert steps[-1] == 32 and 31 in steps


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has no bf16 instructions")
def test_bf16_training_on_the_cpu_stays_finite_and_is_recorded(camvid_root, tmp_path):
    """--precision bf16 on the CPU: with K = 1 (dense refinement over the crop) the sparse head's
    dilation-3 branch got NaN weight gradients in channels_last (oneDNN; this test failed so); the
    trainer runs bf16 in NCHW, and the loss stays finite."""
    torch.manual_seed(0)
    train_main(_train_args(camvid_root, tmp_path / "run", 8, ["--variant", "mnv2_sparse", "--no-pretrained",
                                                             "--precision", "bf16", "--crop", "128", "256", "--topk", "1"]))
    import csv
    with open(tmp_path / "run" / "log.csv") as f:
        losses = [float(r["total"]) for r in csv.DictReader(f) if r["total"]]
    assert len(losses) == 8 and all(np.isfinite(losses))
    stage = read_checkpoint(tmp_path / "run" / "last.pt")["train"]["stages"][-1]
    assert stage["precision"] == "bf16" and stage["dtype"] == "bf16"


def test_fp16_training_needs_cuda(camvid_root, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: fp16 is allowed")
    from fornet_ros.errors import FornetError
    with pytest.raises(FornetError, match="fp16 needs a CUDA device"):
        train_main(_train_args(camvid_root, tmp_path / "run", 2, ["--precision", "fp16"]))
    assert not (tmp_path / "run" / "log.csv").exists()


def test_distributed_training_two_processes_gloo(camvid_root, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29731",
           "-m", "fornet_ros.training.train", *_train_args(camvid_root, tmp_path / "ddp", 4), "--device", "cpu", "--threads", "1"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    line = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
    assert json.loads(line)["step"] == 4
    assert (tmp_path / "ddp" / "best.pt").is_file()
