"""`fornet bench --e2e`: the Segmenter's stages and end to end, same columns on the CPU as on CUDA."""

import json

import torch

from fornet_ros.cli import main as cli


def test_bench_e2e_columns_per_camera_size_and_count(checkpoint_path, capsys):
    assert cli(["bench", "--e2e", "--checkpoint", str(checkpoint_path), "--camera-size", "60", "80",
                "--camera-size", "200", "300", "--cameras", "1", "2", "--topk", "0.1", "--mode", "sparse", "--runs", "3",
                "--warmup", "1", "--threads", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["device"] == "cpu" and res["processing"] == "opencv" and res["cuda_graphs"] is False
    assert "gpu" not in res and res["precision"] == "float32" and res["provider"] == "cpu" and res["graph_failures"] == []
    rows = {(tuple(r["camera_size"]), r["cameras"]): r for r in res["results"]}
    assert set(rows) == {((60, 80), 1), ((60, 80), 2), ((200, 300), 1), ((200, 300), 2)}
    for r in rows.values():
        assert r["input_size"] == [128, 256] and r["topk"] == 0.1 and r["mode"] == "sparse"
        assert r["path"] == "sparse"  # the path taken is reported (an explicit mode is obeyed)
        assert r["graph_ms"] is None  # n/a on the CPU
        for col in ("network_ms", "pre_ms", "post_ms", "e2e_ms", "e2e_labels_ms"):
            assert 0 < r[col]["median"] <= r[col]["p95"], col
    assert cli(["bench", "--e2e", "--checkpoint", str(checkpoint_path), "--camera-size", "60", "80", "--runs", "2",
                "--warmup", "0", "--processing", "torch"]) == 0
    out = capsys.readouterr().out
    assert out.split("\n")[1].split()[5] == "path"  # auto's path is a column
    assert "processing torch" in out and "CUDA graphs off" in out and " n/a " in out and "60x80" in out


def test_bench_e2e_bad_input_is_one_line(checkpoint_path, capsys):
    cases = [(["--cameras", "0"], "--cameras"), (["--runs", "0"], "--runs"),
             (["--backend", "onnxruntime"], "--e2e times the torch backend")]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "CUDA is not available"))
    for args, msg in cases:
        try:  # a value the parser rejects exits from argparse; a run-time check returns 2
            rc = cli(["bench", "--e2e", "--checkpoint", str(checkpoint_path), *args])
        except SystemExit as e:
            rc = e.code
        assert rc == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
