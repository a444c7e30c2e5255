"""The library says what the command line says: the same FornetError for the same bad value
(issue #21); corrupt checkpoints described in our words; eval's trained-on-this-data warning;
info's GFLOPs size; export's warnings."""

import json
import warnings

import numpy as np
import pytest
import torch

from fornet_ros.cli import main as cli
from fornet_ros.errors import FornetError
from fornet_ros.training.evaluation import trained_on_scored_data
from fornet_ros.inference import Segmenter
from fornet_ros.validation import MAX_INPUT_PIXELS, check_size


@pytest.fixture
def seg(checkpoint_path):
    return Segmenter.from_checkpoint(checkpoint_path, device="cpu")


@pytest.mark.parametrize("kw,cli_args,expect", [
    (dict(topk_ratio=float("nan")), ["--topk", "nan"], "must be a finite number"),
    (dict(topk_ratio=5), ["--topk", "5"], "must be <= 1"),
    (dict(input_size=(7, 9)), ["--input-size", "7", "9"], "both sides in [8, 16384]"),
    (dict(input_size=(-5, 10)), ["--input-size", "-5", "10"], "both sides in [8, 16384]"),
    (dict(input_size=(8192, 8192)), ["--input-size", "8192", "8192"], f"exceeds the limit of {MAX_INPUT_PIXELS}"),
    (dict(device="cudo"), ["--device", "cudo"], "device must be one of auto, cpu, cuda, cuda:N"),
    (dict(precision="fp64"), ["--precision", "fp64"], "fp64"),
    (dict(resize_mode="crop"), ["--resize-mode", "crop"], "crop"),
])
def test_library_and_cli_reject_alike(checkpoint_path, tmp_path, capsys, kw, cli_args, expect):
    with pytest.raises(FornetError, match=None) as e:
        Segmenter.from_checkpoint(checkpoint_path, **kw)
    assert expect in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SystemExit) as ex:
        cli(["predict", str(tmp_path), "--out", str(tmp_path / "o"), *cli_args])
    err = capsys.readouterr().err
    assert ex.value.code == 2 and expect in err and err.count("\n") == 1, err


def test_topk_setter_and_sizes(seg):
    for bad in (float("nan"), float("inf"), 1.5):
        with pytest.raises(FornetError):
            seg.topk_ratio = bad
    seg.topk_ratio = -1  # negative: the model's K (documented in --help)
    assert seg.topk_ratio == seg.runner.default_topk
    assert check_size("s", (4096, 4096)) == (4096, 4096)
    with pytest.raises(FornetError, match="exceeds the limit"):
        check_size("s", (4096, 4097))


def test_cuda_without_cuda_is_one_line(checkpoint_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a GPU machine
    with pytest.raises(FornetError, match="CUDA is not available"):
        Segmenter.from_checkpoint(checkpoint_path, device="cuda")


def test_image_errors_are_fornet_errors(seg):
    with pytest.raises(FornetError, match="single-channel"):
        seg(np.zeros((10, 10), np.uint8))


@pytest.mark.parametrize("content,expect", [
    (b"", "the file is empty"),
    (bytes(range(256)) * 8, "not a PyTorch checkpoint"),
])
def test_corrupt_checkpoint_in_our_words(tmp_path, capsys, content, expect):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    assert cli(["info", "--checkpoint", str(bad)]) == 2
    err = capsys.readouterr().err
    assert expect in err and "weights_only" not in err and err.count("\n") == 1, err


def test_checkpoint_with_code_is_refused_without_unsafe_advice(tmp_path, capsys):
    bad = tmp_path / "obj.pt"
    torch.save({"x": torch.nn.ReLU()}, bad)
    assert cli(["info", "--checkpoint", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "never code" in err and "weights_only=False" not in err and err.count("\n") == 1, err


def test_eval_warns_on_training_data():
    rec = {"dataset": "camvid", "splits": ["train", "val"], "exclude_drives": ["0006R0"]}
    w = trained_on_scored_data(rec, "val")
    assert w and "not a hold-out score" in w and "--drives 0006R0" in w
    assert trained_on_scored_data(rec, "train", ["0006R0"]) is None  # the held-out drive
    assert trained_on_scored_data(rec, "train", ["0001TP", "0006R0"])  # one trained-on drive is enough
    assert trained_on_scored_data(rec, "test") is None
    assert trained_on_scored_data({"splits": ["val"], "exclude_drives": None}, "val")
    assert trained_on_scored_data({"dataset": "camvid", "iters": 10}, "val") is None  # older: unknown
    assert trained_on_scored_data(None, "val") is None


def test_eval_cli_prints_the_warning(tmp_path, checkpoint_path, capsys):
    from fornet_ros.inference.checkpoint import read_checkpoint
    from fornet_ros.tools.synthetic import write_camvid_like
    ck = read_checkpoint(checkpoint_path)
    ck["train"] = {"splits": ["test"], "exclude_drives": None}
    torch.save(ck, tmp_path / "t.pt")
    root = write_camvid_like(tmp_path / "cv", n=1, size=(64, 96), splits=("test",))
    assert cli(["eval", "--data-root", str(root), "--split", "test", "--checkpoint", str(tmp_path / "t.pt"),
                "--json", "--input-size", "64", "96"]) == 0
    out, err = capsys.readouterr()
    assert "trained on split 'test'" in err and "not a hold-out score" in json.loads(out)["warning"]


def test_info_flops_at_the_models_input_size(tmp_path, capsys):
    ck = tmp_path / "u.pt"
    cli(["init", "--out", str(ck), "--input-size", "64", "96"])
    capsys.readouterr()
    cli(["info", "--checkpoint", str(ck), "--json"])
    a = json.loads(capsys.readouterr().out)
    assert a["size"] == [64, 96] and a["size_from"] == "the model's input size"
    cli(["info", "--checkpoint", str(ck), "--json", "--size", "128", "192"])
    b = json.loads(capsys.readouterr().out)
    assert b["size"] == [128, 192] and b["size_from"] == "--size"
    assert b["gflops_k1"] == pytest.approx(4 * a["gflops_k1"], rel=0.1)  # 4x the pixels
    cli(["info", "--checkpoint", str(ck)])
    assert "input 64x96 (the model's input size)" in capsys.readouterr().out


def test_export_keeps_real_warnings_only(tmp_path, capsys):
    from fornet_ros.inference.export import export_onnx
    ck = tmp_path / "u.pt"
    cli(["init", "--out", str(ck), "--input-size", "64", "96"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = export_onnx(ck, tmp_path / "m.onnx")
    assert info["max_abs_diff"] < 1e-3
    texts = [str(w.message) for w in caught]
    assert not any("Converting a tensor to a Python" in t or "advanced indexing" in t for t in texts), texts
    with pytest.raises(FornetError, match="exceeds the limit"):
        export_onnx(ck, tmp_path / "big.onnx", size=(100000 // 10, 100000 // 10))
    with pytest.raises(FornetError, match="is a file"):
        export_onnx(ck, tmp_path / "m.onnx" / "x.onnx")


def test_adaptive_k_relation_is_one_line(tmp_path, capsys):
    import cv2
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 30, 3), np.uint8))
    assert cli(["predict", str(tmp_path), "--out", str(tmp_path / "o"), "--adaptive-k", "0.5", "0.9", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "k_min <= k_max" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("command", [["info"], ["export", "--onnx", "{tmp}/m.onnx"], ["bench-segmenter"]])
def test_a_checkpoint_that_is_a_folder_is_named_a_folder(tmp_path, capsys, command):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"")
    (run / "m.onnx").mkdir()
    assert cli([*[a.format(tmp=tmp_path) for a in command], "--checkpoint", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {run} is a folder, not a file (in it: best.pt, m.onnx)" in err and err.count("\n") == 1, err
    assert "not found" not in err
    with pytest.raises(FornetError, match=f"ONNX model {run / 'm.onnx'} is a folder, not a file$"):
        Segmenter.from_checkpoint(run / "m.onnx")


def test_export_refuses_an_output_that_is_not_onnx(checkpoint_path, tmp_path, capsys):
    assert cli(["export", "--checkpoint", str(checkpoint_path), "--onnx", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert f"the ONNX output must be a .onnx file, got {tmp_path / 'x.pt'}" in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("checkpoint,expect", [
    (None, "the packaged model is a PyTorch checkpoint (.pt): export it with `fornet export --onnx model.onnx` and "
           "pass --checkpoint model.onnx"),
    ("fast", "the packaged model fast is a PyTorch checkpoint (.pt): export it with `fornet export --checkpoint fast "
             "--onnx model.onnx`"),
    ("{tmp}/run/best.pt", "not {tmp}/run/best.pt: export it with `fornet export --checkpoint {tmp}/run/best.pt "
                          "--onnx best.onnx` and pass --checkpoint best.onnx"),
])
def test_the_onnxruntime_backend_with_a_pt_says_how_to_export_it(tmp_path, capsys, checkpoint, expect):
    expect = expect.format(tmp=tmp_path)
    args = ["predict", str(tmp_path), "--out", str(tmp_path / "o"), "--backend", "onnxruntime"]
    (tmp_path / "a.png").write_bytes(b"")
    assert cli(args + (["--checkpoint", checkpoint.format(tmp=tmp_path)] if checkpoint else [])) == 2
    err = capsys.readouterr().err
    assert expect in err and err.count("\n") == 1 and "got None" not in err, err
    with pytest.raises(FornetError) as e:
        Segmenter.from_checkpoint(checkpoint and checkpoint.format(tmp=tmp_path), backend="onnxruntime")
    assert expect in str(e.value)
