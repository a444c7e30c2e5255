import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fornet_ros.cli import main as cli
from fornet_ros.tools.synthetic import make_scene


def run(*args):
    return subprocess.run([sys.executable, "-m", "fornet_ros.cli", *args], capture_output=True, text=True, timeout=300)


def test_help_for_every_subcommand(capsys):
    from fornet_ros.cli import COMMANDS
    assert cli(["--help"]) == 0
    assert "predict" in capsys.readouterr().out
    for name in COMMANDS:
        with pytest.raises(SystemExit) as e:
            cli([name, "--help"])
        assert e.value.code == 0
        assert "usage: fornet " + name in capsys.readouterr().out


def test_init_info_predict(tmp_path, capsys):
    ck = tmp_path / "u.pt"
    cli(["init", "--variant", "fornet_s", "--out", str(ck), "--input-size", "128", "256"])
    cli(["info", "--checkpoint", str(ck), "--json", "--size", "128", "256"])
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["variant"] == "fornet_s" and 0.5 < info["params_m"] < 5 and info["gflops_at_k"] < info["gflops_k1"]
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        img, _ = make_scene(90, 150, seed=i)
        cv2.imwrite(str(imgs / f"f{i}.png"), img[:, :, ::-1])
    (imgs / "broken.png").write_bytes(b"nope")
    cli(["predict", str(imgs), "--checkpoint", str(ck), "--out", str(tmp_path / "pred")])
    for i in range(2):
        lab = cv2.imread(str(tmp_path / "pred" / f"f{i}_labels.png"), cv2.IMREAD_UNCHANGED)
        assert lab.shape == (90, 150) and lab.dtype == np.uint8 and lab.max() < 19
        assert cv2.imread(str(tmp_path / "pred" / f"f{i}_color.png")).shape == (90, 150, 3)
        assert cv2.imread(str(tmp_path / "pred" / f"f{i}_importance.png")).shape == (90, 150, 3)
    assert "skipping" in capsys.readouterr().err


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 30, 3), np.uint8))
    p = run("predict", str(tmp_path), "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and "checkpoint not found" in p.stderr and "Traceback" not in p.stderr


def test_bench_json(tmp_path):
    p = run("bench", "--variant", "fornet_s", "ddrnet23_slim", "--size", "64", "128", "--topk", "0.25", "1.0",
            "--runs", "2", "--warmup", "1", "--backend", "torch", "onnxruntime", "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["threads"] >= 1 and res["machine"] and res["backends"] == ["torch", "onnxruntime"]
    recs = {(r["variant"], r["backend"], r["topk"], r["mode"]): r for r in res["results"]}
    fornet = {k for k in recs if k[0] == "fornet_s"}
    assert fornet == {("fornet_s", b, k, m) for b in ("torch", "onnxruntime") for k in (0.25, 1.0)
                      for m in ("sparse", "dense")}
    assert all(recs[k]["total_ms"] > 0 and recs[k]["focus_ms"] > 0 for k in fornet)
    assert {k for k in recs if k[0] == "ddrnet23_slim"} == {("ddrnet23_slim", b, None, "dense")
                                                              for b in ("torch", "onnxruntime")}


def test_export_cli(tmp_path, checkpoint_path):
    p = run("export", "--checkpoint", str(checkpoint_path), "--onnx", str(tmp_path / "m.onnx"))
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout.strip().splitlines()[-1])
    assert info["max_abs_diff"] < 1e-3 and (tmp_path / "m.onnx").stat().st_size > 100_000


def test_eval_cli_json(tmp_path, checkpoint_path):
    from fornet_ros.tools.synthetic import write_camvid_like
    root = write_camvid_like(tmp_path / "cv", n=3, size=(96, 128), splits=("test",))
    p = run("eval", "--dataset", "camvid", "--data-root", str(root), "--split", "test",
            "--checkpoint", str(checkpoint_path), "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    for key in ("miou", "per_class_iou", "boundary_iou", "thin_miou", "hard_region_recall", "pixel_accuracy"):
        assert key in res
    assert res["images"] == 3 and 0 <= res["miou"] <= 1
    p = run("eval", "--dataset", "camvid", "--data-root", str(root), "--split", "nosuch",
            "--checkpoint", str(checkpoint_path), "--json")
    assert p.returncode == 2 and "folder not found" in p.stderr


def test_bench_costmap_cli():
    p = run("bench-costmap", "--size", "256", "512", "--runs", "2", "--grid", "100", "100")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["layers"] == 5 and r["valid_pixels"] > 0 and r["frame_ms_median"] > 0 and r["lookup_build_ms"] > 0


def test_bench_segmenter_cli(checkpoint_path):
    p = run("bench-segmenter", "--checkpoint", str(checkpoint_path), "--image-size", "120", "200",
            "--input-size", "64", "128", "--runs", "2")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["image_size"] == [120, 200] and r["input_size"] == [64, 128] and r["segmenter_ms_median"] > 0


BAD_INPUT = {  # every sub-command: a missing file or a bad value -> one line on stderr, exit 2
    "init": (["--out", "{file}/x.pt"], "File exists"),
    "info": (["--checkpoint", "{tmp}/none.pt"], "checkpoint not found"),
    "predict": (["{tmp}/none", "--out", "{tmp}/o"], "input not found"),
    "eval": (["--data-root", "{tmp}/none"], "{tmp}/none"),
    "train": (["--data-root", "{tmp}/none", "--out", "{tmp}/o"], "{tmp}/none"),
    "export": (["--checkpoint", "{tmp}/none.pt", "--onnx", "{tmp}/m.onnx"], "checkpoint not found"),
    "bench": (["--variant", "fornet_s", "--runs", "0"], "--runs"),
    "bench-segmenter": (["--checkpoint", "{tmp}/none.pt"], "checkpoint not found"),
    "bench-costmap": (["--size", "0", "0"], "--size"),
    "bench-points": (["--runs", "0"], "--runs"),
    "bench-node": (["--checkpoint", "{tmp}/none.pt", "--seconds", "1"], "checkpoint not found"),
    "bag": (["info", "{tmp}/none"], "{tmp}/none"),
    "demo": (["--input", "{tmp}/none", "--out", "{tmp}/o"], "{tmp}/none"),
    "synth": (["--out", "{tmp}/s", "--frames", "0"], "--frames"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_every_subcommand_fails_in_one_line(tmp_path, capsys, name):
    from fornet_ros.cli import COMMANDS
    assert set(BAD_INPUT) == set(COMMANDS)
    (tmp_path / "file").write_text("not a folder")
    args, expect = BAD_INPUT[name]
    fill = lambda t: t.format(tmp=tmp_path, file=tmp_path / "file")  # noqa: E731
    assert cli([name, *map(fill, args)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"fornet {name}: error: ") and fill(expect) in err, err


@pytest.mark.parametrize("args,expect", [
    (["--checkpoint", "{tmp}/m.onnx", "--load-step", "5"], "needs a torch checkpoint"),
    (["--load-step", "30", "--seconds", "20"], "--load-step must lie inside --seconds"),
    (["--cameras", "2"], "--cameras other than 1 needs --soak")])
def test_bench_node_rejects_impossible_runs_in_one_line(tmp_path, capsys, args, expect):
    assert cli(["bench-node", *[a.format(tmp=tmp_path) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expect in err, err


@pytest.mark.parametrize("args", [["bench", "--runs", "x"], ["eval"], ["bag", "frobnicate"]])
def test_usage_errors_are_one_line(capsys, args):
    with pytest.raises(SystemExit) as e:
        cli(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith(f"fornet {args[0]}: error: "), err
