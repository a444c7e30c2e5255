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
    out, err = capsys.readouterr()
    assert "skipping" in err and "broken.png" in err
    assert "wrote 2 prediction(s)" in out and "skipped 1 unreadable" in out  # the count is what was written
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == sorted(
        f"f{i}_{k}.png" for i in range(2) for k in ("labels", "color", "importance"))
    # nothing readable: exit 2, one line, no folder
    assert cli(["predict", str(imgs / "broken.png"), "--checkpoint", str(ck), "--out", str(tmp_path / "p2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read image" in err and not (tmp_path / "p2").exists(), err


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 30, 3), np.uint8))
    p = run("predict", str(tmp_path), "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and "checkpoint not found" in p.stderr and "Traceback" not in p.stderr


def test_bench_times_its_settings_in_rotating_rounds_of_warm_blocks():
    from fornet_ros.tools.bench import _interleaved_medians
    calls = []
    fns = [lambda i=i: calls.append(i) for i in range(3)]
    ms = _interleaved_medians(fns, runs=3, warmup=1, sync=lambda: None, block=2)
    assert len(ms) == 3 and all(m >= 0 for m in ms)
    # warm-up; then rounds: per callable one untimed call and up to 2 timed ones, the order rotating
    assert calls == [0, 1, 2] + [0] * 3 + [1] * 3 + [2] * 3 + [1] * 2 + [2] * 2 + [0] * 2


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


def _exit_code(fn) -> int:
    """The CLI's exit code whether it returned it (run-time errors) or argparse exited (parse time)."""
    try:
        return fn()
    except SystemExit as e:
        return e.code


BAD_INPUT = {  # every sub-command: a missing file or a bad value -> one line on stderr, exit 2
    "init": (["--out", "{file}/x.pt"], "{file} is a file"),
    "info": (["--checkpoint", "{tmp}/none.pt"], "checkpoint not found"),
    "predict": (["{tmp}/none", "--out", "{tmp}/o"], "input not found"),
    "eval": (["--data-root", "{tmp}/none"], "{tmp}/none"),
    "train": (["--data-root", "{tmp}/none", "--out", "{tmp}/o"], "{tmp}/none"),
    "export": (["--checkpoint", "{tmp}/none.pt", "--onnx", "{tmp}/m.onnx"], "checkpoint not found"),
    "bench": (["--variant", "fornet_s", "--runs", "0"], "--runs"),  # (rejected at parse time now)
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
    assert _exit_code(lambda: cli([name, *map(fill, args)])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"fornet {name}: error: ") and fill(expect) in err, err


@pytest.mark.parametrize("args,expect", [
    (["--checkpoint", "{tmp}/m.onnx", "--load-step", "5"], "needs a torch checkpoint"),
    (["--load-step", "30", "--seconds", "20"], "--load-step must lie inside --seconds"),
    (["--cameras", "2"], "--cameras other than 1 needs --soak"),
    (["--backend", "onnxruntime"], "--backend onnxruntime needs an ONNX --checkpoint"),
    (["--backend", "torch", "--checkpoint", "{tmp}/m.onnx"], "--backend torch needs a .pt --checkpoint")])
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


def _bad_values(action) -> list[list[str]]:
    """Out-of-range or malformed values for one argparse action, from what the action declares."""
    import argparse

    from fornet_ros.validation import Device, Number, SizeAction, Text
    if action.nargs == 0:
        return [["=x"]]  # a flag given a value
    if isinstance(action, SizeAction):
        return [["7", "9"], ["-5", "10"], ["4097", "4097"], ["100000", "100000"], ["8", "x"]]
    n = action.nargs if isinstance(action.nargs, int) else 1
    t = action.type
    if action.choices is not None:
        singles = ["bogus"]
    elif isinstance(t, Number):
        singles = ["x", "nan", "inf", "1.5" if t.kind is int else "1e400"]
        if t.lo > float("-inf"):
            singles.append(f"{t.lo:g}" if t.lo_open else f"{t.lo - (1 if t.kind is int else 0.5):g}")
        if t.hi < float("inf"):
            singles.append(f"{t.hi + (1 if t.kind is int else 0.5):g}")
    elif isinstance(t, Device):
        singles = ["cudo", "cuda:x", ""]
    elif isinstance(t, Text):
        singles = ["", " ", "a\nb"]
    else:
        raise AssertionError(f"{action.dest}: no checked type ({t!r}): validation.harden must give it one")
    assert not isinstance(action, argparse._SubParsersAction)
    return [[v] * n for v in singles]


def _generated_cases():
    """(command words, option, bad values) for every option of every sub-command, walked from the
    parsers the CLI builds (sub-commands such as ``bag eval`` included)."""
    import argparse

    from fornet_ros.cli import COMMANDS, build_parser

    def walk(parser, words):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield from walk(sub, [*words, sub_name])
                continue
            for values in _bad_values(action):
                yield words, (action.option_strings[-1] if action.option_strings else None), values

    for name in COMMANDS:
        yield from walk(build_parser(name)[0], [name])


GENERATED = list(_generated_cases())


def test_generated_cases_cover_every_option():
    from fornet_ros.cli import COMMANDS
    covered = {(tuple(w), o) for w, o, _ in GENERATED}
    assert {w[0] for w, _ in covered} == set(COMMANDS)
    for opt in ("--topk", "--input-size", "--device", "--precision", "--alpha", "--out", "--size", "--runs"):
        assert any(o == opt for _, o in covered), opt
    assert len(covered) > 150 and len(GENERATED) > 500


@pytest.mark.parametrize("words,option,values", GENERATED,
                         ids=[" ".join([*w, o or "<pos>", *v]) for w, o, v in GENERATED])
def test_every_option_rejects_bad_values_in_one_line(tmp_path, monkeypatch, capsys, words, option, values):
    monkeypatch.chdir(tmp_path)
    if option is None:
        argv = [*words, *values]
    elif values == ["=x"]:
        argv = [*words, option + "=x"]
    else:
        argv = [*words, option, *values]
    assert _exit_code(lambda: cli(argv)) == 2, argv
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"fornet {words[0]}") and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == [], "a file was written"


def test_predict_twice_into_the_input_folder_does_not_segment_its_own_outputs(tmp_path, capsys):
    ck = tmp_path / "u.pt"
    cli(["init", "--variant", "fornet_s", "--out", str(ck), "--input-size", "64", "96"])
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        cv2.imwrite(str(imgs / f"f{i}.png"), make_scene(48, 80, seed=i)[0][:, :, ::-1])
    capsys.readouterr()
    assert cli(["predict", str(imgs), "--checkpoint", str(ck), "--out", str(imgs)]) == 2  # the input folder itself
    err = capsys.readouterr().err
    assert f"--out {imgs} is the input folder" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in imgs.iterdir()) == ["f0.png", "f1.png"]
    for _ in range(2):  # a sub-folder of the input: the second run skips the first run's outputs
        assert cli(["predict", str(imgs), "--checkpoint", str(ck), "--out", str(imgs / "pred")]) == 0
        assert "wrote 2 prediction(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (imgs / "pred").iterdir()) == sorted(
        f"f{i}_{k}.png" for i in range(2) for k in ("labels", "color", "importance"))


def _options_without_help():
    import argparse

    from fornet_ros.cli import COMMANDS, build_parser

    def walk(parser, words):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield from walk(sub, [*words, sub_name])
            elif not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
                yield " ".join([*words, action.option_strings[-1] if action.option_strings else action.dest])

    return [o for name in COMMANDS for o in walk(build_parser(name)[0], [name])]


def test_every_option_has_help_text():
    # train's options and demo --timeout are being reworded with their own changes
    missing = [o for o in _options_without_help() if not o.startswith("train ") and o != "demo --timeout"]
    assert missing == [], missing


def test_bench_times_the_models_input_size_by_default(tmp_path, capsys):
    ck = tmp_path / "u.pt"
    cli(["init", "--variant", "fornet_s", "--out", str(ck), "--input-size", "64", "96"])
    capsys.readouterr()
    assert cli(["bench", "--checkpoint", str(ck), "--topk", "0.5", "--runs", "1", "--warmup", "0", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["sizes"] == [[64, 96]] and {tuple(r["size"]) for r in res["results"]} == {(64, 96)}
    cli(["info", "--checkpoint", str(ck), "--json"])
    assert json.loads(capsys.readouterr().out)["size"] == [64, 96]  # as info says
    assert cli(["bench", "--variant", "fornet_s", "--size", "32", "64", "--topk", "1", "--runs", "1", "--warmup", "0",
                "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sizes"] == [[32, 64]]
