"""The CPU speed tools: conv+BN folding, the ONNX export cached by content hash, static int8
quantization (calibrated on synthetic frames here), and the fastest measured backend."""

import copy
import sys

import numpy as np
import onnx
import pytest
import torch

from fornet_ros.errors import FornetError
from fornet_ros.inference import Segmenter
from fornet_ros.inference import backends
from fornet_ros.inference.checkpoint import ModelMeta
from fornet_ros.inference.runtime import TorchRunner
from fornet_ros.model.focus import AdaptiveK
from fornet_ros.inference.backends import exported, fold_batchnorm, quantize_int8
from fornet_ros.tools.synthetic import make_scene


def test_fold_batchnorm_removes_every_bn_and_keeps_the_numbers(small_model):
    folded = copy.deepcopy(small_model).eval()
    n = fold_batchnorm(folded)
    assert n > 10 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        a, b = small_model(x, topk_ratio=0.5), folded(x, topk_ratio=0.5)
    assert (a["logits"] - b["logits"]).abs().max() < 1e-4 and torch.equal(a["selected"], b["selected"])
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(copy.deepcopy(small_model).train())
    seg = Segmenter(small_model, ModelMeta.default(19, (64, 96)), device="cpu")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in small_model.modules())  # the caller's model untouched
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in seg.model.modules())  # the runner's is folded


def _live_focus(model):
    """The focus stage's classifier starts at zero (it adds nothing until trained): give it and the
    fuse conv weights, so a zero weight at the wrong input channel changes the logits."""
    torch.manual_seed(1)
    for conv in (model.refiner.branches.classifier, model.refiner.branches.fuse):
        torch.nn.init.normal_(conv.weight, std=0.1)
        torch.nn.init.normal_(conv.bias, std=0.1)
    return model


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_pad_focus_channels_fills_whole_simd_blocks_with_the_same_outputs(small_model, mode):
    small_model = _live_focus(copy.deepcopy(small_model))
    padded = copy.deepcopy(small_model)
    before = padded.refiner.branches.branches[0].in_channels, padded.selector.net[0].in_channels
    added = padded.pad_focus_channels(16)
    after = padded.refiner.branches.branches[0].in_channels, padded.selector.net[0].in_channels
    assert added == (after[0] - before[0]) + (after[1] - before[1]) > 0
    assert all(c.in_channels % 16 == 0 for c in padded.refiner.branches.branches) and after[1] % 16 == 0
    assert padded.context[0].out_channels == small_model.context[0].out_channels + after[0] - before[0]
    assert padded.pad_focus_channels(16) == 0  # already whole blocks
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        for k in (0.25, 1.0):
            a, b = small_model(x, topk_ratio=k, mode=mode), padded(x, topk_ratio=k, mode=mode)
            unrefined = small_model(x, topk_ratio=0.0, mode=mode)["logits"]
            assert (a["logits"] - unrefined).abs().max() > 1e-3  # the focus stage changes the logits
            assert (a["logits"] - b["logits"]).abs().max() < 1e-5, k
            assert (a["importance"] - b["importance"]).abs().max() < 1e-6 and torch.equal(a["selected"], b["selected"])
    from fornet_ros.model import create_model
    assert create_model("fornet_s", focus=False).pad_focus_channels() == 0  # no focus stage: nothing to pad


def test_the_export_runs_the_padded_convs(small_model, tmp_path):
    from fornet_ros.inference.checkpoint import save_checkpoint
    from fornet_ros.inference.export import export_onnx
    ckpt = save_checkpoint(tmp_path / "live.pt", _live_focus(copy.deepcopy(small_model)), ModelMeta.default(19, (64, 96)))
    info = export_onnx(ckpt, tmp_path / "m.onnx", size=(64, 96), topk_ratio=0.25)
    assert info["max_abs_diff"] <= 1e-4  # against the model as trained, whose focus stage adds something
    weights = {t.name: t.dims for t in onnx.load(str(tmp_path / "m.onnx")).graph.initializer}
    focus = {n: d for n, d in weights.items() if len(d) == 4 and ("refiner.branches.branches" in n or "selector.net.0" in n)}
    assert len(focus) == 4 and all(d[1] % 16 == 0 for d in focus.values()), focus


def test_export_is_cached_by_content_hash_and_falls_back_to_the_user_cache(checkpoint_path, tmp_path, monkeypatch):
    p = exported(checkpoint_path, (64, 96), 0.25, "sparse")
    assert p.parent == checkpoint_path.parent and backends.content_hash(checkpoint_path) in p.name
    from fornet_ros.inference.export import EXPORT_REVISION
    assert p.name.endswith(f".r{EXPORT_REVISION}.onnx")  # an export by an older exporter is not reused
    mtime = p.stat().st_mtime_ns
    assert exported(checkpoint_path, (64, 96), 0.25, "sparse") == p and p.stat().st_mtime_ns == mtime  # reused
    assert exported(checkpoint_path, (64, 96), 0.25, "dense") != p  # another graph, another file
    monkeypatch.setattr(backends.os, "access", lambda *a: False)  # a read-only package folder
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    q = exported(checkpoint_path, (64, 96), 0.25, "sparse")
    assert q.parent == tmp_path / "cache" / "fornet_ros" and q.exists()


def test_int8_quantization_is_qdq_keeps_the_metadata_and_the_labels(checkpoint_path, tmp_path):
    fp32 = exported(checkpoint_path, (64, 96), 1.0, "dense")
    seg = Segmenter.from_checkpoint(fp32)
    frames = [make_scene(64, 96, seed=i)[0] for i in range(6)]
    calib = seg.preprocess(frames[:4])  # synthetic frames stand in for training frames
    int8 = quantize_int8(fp32, tmp_path / "m.int8.onnx", calib)
    proto = onnx.load(str(int8))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert {p.key for p in proto.metadata_props} >= {"fornet_format", "classes", "topk_ratio"}
    q = Segmenter.from_checkpoint(int8)
    agree = np.mean([(q(f).labels == seg(f).labels).mean() for f in frames[4:]])
    assert agree > 0.9, agree
    with pytest.raises(FornetError, match="calibration"):
        quantize_int8(fp32, tmp_path / "x.onnx", np.zeros((0, 3, 64, 96), np.float32))


def _rigged(monkeypatch, torch_ms, *ort_ms):
    """Make fastest()'s timings say what the test needs (torch is timed first, then ONNX Runtime's
    graphs: the focus path torch's table names first, the other one next; one value serves both)."""
    times = iter([torch_ms, *(ort_ms * 2 if len(ort_ms) == 1 else ort_ms)])

    def median(fn, runs):
        fn()  # the candidate still runs once: it must work
        return next(times)
    monkeypatch.setattr(backends, "median_ms", median)


def test_fastest_picks_a_measured_backend_and_says_which(checkpoint_path):
    lines = []
    seg = Segmenter.from_checkpoint(checkpoint_path, backend="fastest", device="cpu", input_size=(64, 96),
                                    topk_ratio=0.25, log=lines.append)
    assert len(lines) == 1 and lines[0] == seg.choice and seg.backend == "torch"  # either way: K stays movable
    won = "onnxruntime fp32" if isinstance(seg.runner, backends.HybridRunner) else "torch"
    assert lines[0].startswith(f"backend: {won}") and "torch" in lines[0]
    assert "onnxruntime fp32 sparse" in lines[0] and "onnxruntime fp32 dense" in lines[0]  # K = 0.25: both graphs
    assert seg.input_size == (64, 96) and seg(make_scene(64, 96, seed=0)[0]).labels.shape == (64, 96)
    with pytest.raises(FornetError, match="calibration"):
        Segmenter.from_checkpoint(checkpoint_path, backend="fastest", precision="int8")


def test_fastest_weighs_torch_by_the_factor_of_where_it_runs(checkpoint_path, monkeypatch):
    _rigged(monkeypatch, 10.0, 11.0)  # torch 10% faster alone, but 1.2x slower where it will run
    lines = []
    seg = Segmenter.from_checkpoint(checkpoint_path, backend="fastest", device="cpu", input_size=(64, 96),
                                    topk_ratio=0.25, log=lines.append, torch_factor=1.2)
    assert isinstance(seg.runner, backends.HybridRunner) and "torch 10.0 ms (x1.2 where it runs)" in lines[0]
    _rigged(monkeypatch, 10.0, 13.0)  # ... by more than that: torch
    seg = Segmenter.from_checkpoint(checkpoint_path, backend="fastest", device="cpu", input_size=(64, 96),
                                    topk_ratio=0.25, log=lines.append, torch_factor=1.2)
    assert isinstance(seg.runner, TorchRunner) and lines[1].startswith("backend: torch (")


def test_node_fastest_uses_the_node_factor_and_an_onnx_file_ignores_it(checkpoint_path, tmp_path, monkeypatch):
    from fornet_ros.node.params import NodeParams, build_segmenter
    seen = {}
    real = backends.fastest
    monkeypatch.setattr(backends, "fastest", lambda *a, **kw: seen.update(kw) or real(*a, **kw))
    seg, _ = build_segmenter(NodeParams(checkpoint=str(checkpoint_path), device="cpu", input_size=(64, 96)))
    assert seen["torch_factor"] == backends.NODE_TORCH_FACTOR > 1 and seg.backend == "torch"
    onnx = exported(checkpoint_path, (64, 96), 0.25, "dense")
    seg, _ = build_segmenter(NodeParams(checkpoint=str(onnx), device="cpu"))  # backend fastest, an ONNX file
    assert seg.backend == "onnxruntime"


def test_fastest_times_both_onnx_focus_paths_where_k_leaves_a_choice(checkpoint_path, monkeypatch):
    _rigged(monkeypatch, 10.0, 8.0, 5.0)  # ONNX Runtime's other focus path is its faster one
    seg = Segmenter.from_checkpoint(checkpoint_path, backend="fastest", device="cpu", input_size=(64, 96),
                                    topk_ratio=0.25, log=lambda m: None)
    named = seg.paths.resolve(0.25, "auto", 1)
    other = "dense" if named == "sparse" else "sparse"
    assert isinstance(seg.runner, backends.HybridRunner) and seg.runner.fast.graph == other
    assert seg.choice.startswith(f"backend: onnxruntime fp32 {other} ({other} focus path, K=0.25")
    assert f"onnxruntime fp32 {named} 8.0 ms" in seg.choice
    calls = []
    monkeypatch.setattr(backends, "median_ms", lambda fn, runs: calls.append(1) or 1.0)
    Segmenter.from_checkpoint(checkpoint_path, backend="fastest", device="cpu", input_size=(64, 96),
                              topk_ratio=1.0, log=lambda m: None)
    assert len(calls) == 2  # K = 1: every region refined, one graph (dense) besides torch


def test_fastest_times_the_paper_heads_one_graph_once(tmp_path, monkeypatch):
    from fornet_ros.inference.checkpoint import save_checkpoint
    from fornet_ros.model import create_model
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "paper.pt", create_model("mnv2_paper").eval(), ModelMeta.default(19, (64, 96)))
    calls = []
    monkeypatch.setattr(backends, "median_ms", lambda fn, runs: calls.append(1) or (9.0 if len(calls) == 1 else 1.0))
    seg = Segmenter.from_checkpoint(ckpt, backend="fastest", device="cpu", log=lambda m: None)
    assert 0 < seg.topk_ratio < 1 and len(calls) == 2  # torch and one ONNX graph: its masks gate dense convs
    assert seg.choice.startswith("backend: onnxruntime fp32 (dense focus path")


def test_fastest_torch_winning_keeps_the_plain_torch_runner(checkpoint_path, monkeypatch):
    _rigged(monkeypatch, 5.0, 10.0)
    seg = Segmenter.from_checkpoint(checkpoint_path, backend="fastest", device="cpu", input_size=(64, 96),
                                    topk_ratio=0.25, log=lambda m: None)
    assert isinstance(seg.runner, TorchRunner) and seg.choice.startswith("backend: torch (")
    assert "torch for any other K" not in seg.choice


def test_fastest_onnxruntime_winning_runs_its_k_and_torch_any_other(checkpoint_path, monkeypatch):
    _rigged(monkeypatch, 10.0, 5.0)
    seg = Segmenter.from_checkpoint(checkpoint_path, backend="fastest", device="cpu", input_size=(64, 96),
                                    topk_ratio=0.25, log=lambda m: None)
    ref = Segmenter.from_checkpoint(checkpoint_path, backend="torch", device="cpu", input_size=(64, 96),
                                    topk_ratio=0.25)
    ref.paths = seg.paths  # the same measured focus path choice
    assert seg.choice.startswith("backend: onnxruntime fp32 ") and "torch for any other K" in seg.choice
    assert seg.backend == "torch" and "CPUExecutionProvider at K=0.25" in seg.provider
    frame = make_scene(64, 96, seed=1)[0]
    a = seg(frame)
    assert seg.runner.last == "onnxruntime"  # the exported K on its path: the ONNX graph
    assert (a.labels == ref(frame).labels).mean() > 0.99  # the same network, another runtime
    seg.topk_ratio = 0.5  # a K the graph was not exported for: torch, no error (the node's run-time change)
    b = seg(frame)
    assert seg.runner.last == "torch"
    ref.topk_ratio = 0.5
    assert np.array_equal(b.labels, ref(frame).labels)  # the same torch runner's numbers
    seg.topk_ratio = AdaptiveK(0.5, 0.1, 0.6)  # a K rule: torch
    seg(frame)
    assert seg.runner.last == "torch"
    seg.topk_ratio = -1  # the model's K again: back on the graph
    seg(frame)
    assert seg.runner.last == "onnxruntime"
    assert seg.paths.last == seg.runner.fast.graph  # the path the graph was exported with is the one that ran
    other = "sparse" if seg.runner.fast.graph == "dense" else "dense"
    seg.infer(seg.preprocess([frame]), mode=other)  # the other path asked for at its K: routed on K alone,
    assert seg.runner.last == "onnxruntime"  # both paths compute the same network
    assert seg.runtime == "onnxruntime" and not seg.runner.takes(0.5)


@pytest.mark.parametrize("case", ["no onnxruntime", "export fails", "processing torch", "bf16"])
def test_fastest_stays_on_torch_and_says_why(checkpoint_path, monkeypatch, case):
    kw = dict(device="cpu", input_size=(64, 96), topk_ratio=0.25)
    if case == "no onnxruntime":
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
        why = "onnxruntime is not installed"
    elif case == "export fails":
        monkeypatch.setattr(backends, "exported", lambda *a: (_ for _ in ()).throw(RuntimeError("no exporter")))
        why = "onnxruntime fp32 dense failed: RuntimeError: no exporter"  # K = 0.25: each graph says so
        also = "onnxruntime fp32 sparse failed: RuntimeError: no exporter"
    elif case == "processing torch":
        kw["processing"] = "torch"
        why = "processing torch stays on torch"
    else:
        kw["precision"] = "bf16"
        why = "bf16 stays on torch (ONNX Runtime runs fp32)"
    lines = []
    seg = Segmenter.from_checkpoint(checkpoint_path, backend="fastest", log=lines.append, **kw)
    assert isinstance(seg.runner, TorchRunner) and len(lines) == 1
    assert lines[0].startswith("backend: torch (") and why in lines[0], lines[0]
    if case == "export fails":
        assert also in lines[0]
    assert seg(make_scene(64, 96, seed=0)[0]).labels.shape == (64, 96)  # and it runs


def test_ort_sessions_stop_spinning_when_a_run_returns(checkpoint_path):
    """Idle intra-op threads that spin on after a run hold the cores the pre/post-processing needs."""
    seg = Segmenter.from_checkpoint(exported(checkpoint_path, (64, 96), 0.25, "dense"), backend="onnxruntime",
                                    device="cpu")
    opts = seg.runner.session.get_session_options()
    assert opts.get_session_config_entry("session.force_spinning_stop") == "1"
    assert opts.intra_op_num_threads == torch.get_num_threads()


@pytest.mark.parametrize("given,want", [({}, "10000"), ({"GOMP_SPINCOUNT": "123"}, "123"),
                                        ({"OMP_WAIT_POLICY": "PASSIVE"}, None)])  # the policy sets libgomp's own
def test_the_package_shortens_libgomp_spinning_unless_the_user_set_it(given, want):
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")} | given
    out = subprocess.run([sys.executable, "-c", "import os, fornet_ros; print(os.environ.get('GOMP_SPINCOUNT'))"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(want)
