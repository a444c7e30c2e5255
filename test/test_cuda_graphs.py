"""CUDA graph cache: keys and re-capture counts on the CPU with a fake capture (CI); replay equals
eager on a GPU (skipped without CUDA: the CPU tests above it cover the same keying logic)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fornet_ros.inference.checkpoint import ModelMeta
from fornet_ros.inference.cuda_graphs import GraphCache, graph_key
from fornet_ros.inference import Segmenter
from fornet_ros.model import create_model
from fornet_ros.model.focus import AdaptiveK


class FakeCapture:
    """What a CUDA graph does, on the CPU: the callable given at capture time is frozen with a
    static input; a replay copies the new input into it and re-runs the *captured* callable (so a
    key that wrongly shares a graph between two Ks shows up as a wrong output)."""

    made = []

    def __init__(self, fn, x):
        self.fn, self.static_x = fn, x.clone()
        self.static_out = fn(self.static_x)
        self.replays = 0
        FakeCapture.made.append(self)

    def __call__(self, x):
        self.static_x.copy_(x)
        self.replays += 1
        self.static_out = self.fn(self.static_x)
        return self.static_out


@pytest.fixture
def seg(small_model):
    s = Segmenter(small_model, ModelMeta.default(19, (128, 256)), device="cpu", processing="torch")
    s.graphs = GraphCache(max_graphs=8, capture=FakeCapture)  # what the constructor builds on CUDA
    return s


def _frames(n, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (96 + 8 * i, 160, 3), dtype=np.uint8) for i in range(n)]


def _assert_same(a, b):
    for x, y in zip(a, b):
        assert np.array_equal(x.labels, y.labels) and np.array_equal(x.selected, y.selected)
        assert np.array_equal(x.map_u8("confidence"), y.map_u8("confidence"))


def _eager(seg, frames):
    graphs, seg.graphs = seg.graphs, None
    try:
        return seg(frames)
    finally:
        seg.graphs = graphs


def test_graph_key_is_batch_size_dtype_path_and_region_count(small_model):
    m = small_model  # 32-px regions: a 128x256 input has 4 x 8 = 32 of them
    x = torch.zeros(1, 3, 128, 256)
    assert graph_key(x, 0.25, "auto", m) == ((1, 3, 128, 256), torch.float32, False, "auto", 8)
    assert graph_key(x, 0.25, "auto", m) == graph_key(x, 0.26, "auto", m)  # round(0.26 * 32) = 8 too
    assert graph_key(x, 0.25, "auto", m) != graph_key(x, 0.3, "auto", m)  # 10 regions
    assert graph_key(x, 0.25, "auto", m) != graph_key(torch.zeros(2, 3, 128, 256), 0.25, "auto", m)
    assert graph_key(x, 0.25, "auto", m) != graph_key(torch.zeros(1, 3, 128, 192), 0.25, "auto", m)
    assert graph_key(x, 0.25, "auto", m) != graph_key(x, 0.25, "sparse", m)
    assert graph_key(x, 0.25, "auto", m) != graph_key(x.half(), 0.25, "auto", m)
    assert graph_key(x.contiguous(memory_format=torch.channels_last), 0.25, "auto", m)[2] is True
    assert graph_key(torch.zeros(1, 3, 100, 230), 0.5, "auto", m)[-1] == 16  # padded to 4 x 8 regions
    off = create_model("fornet_s", focus=False)
    assert graph_key(x, 0.1, "auto", off) == graph_key(x, 0.9, "auto", off)  # no focus stage: K is moot
    # a model padding its input further than one region (a backbone's own multiple) has more regions
    wide = SimpleNamespace(cfg=m.cfg, pad_multiple=64)  # 100x230 -> 128x256: 4 x 8 regions; 130x230 -> 192x256: 6 x 8
    assert graph_key(torch.zeros(1, 3, 100, 230), 0.5, "auto", wide)[-1] == 16
    assert graph_key(torch.zeros(1, 3, 130, 230), 0.5, "auto", wide)[-1] == 24  # 192x256 padded: 6 x 8 = 48
    for size in ((128, 256), (100, 230), (64, 96), (33, 200)):  # the count is what the model really selects
        for k in (0.1, 0.3):
            with torch.no_grad():
                sel = m(torch.randn(1, 3, *size), topk_ratio=k, mode="sparse")["selected"]
            assert sel.sum() == graph_key(torch.zeros(1, 3, *size), k, "sparse", m)[-1], (size, k)
    # any other head (the paper head scales nested ratios with K): K itself is the key
    paper = SimpleNamespace(cfg=SimpleNamespace(focus=True, head="paper", region_px=8))
    assert graph_key(x, 0.25, "auto", paper)[-1] == 0.25 != graph_key(x, 0.26, "auto", paper)[-1]


def test_one_capture_per_key_replays_equal_eager_on_fresh_inputs(seg):
    FakeCapture.made.clear()
    for seed in range(4):  # same key, fresh frames: one capture, then replays
        frames = _frames(1, seed)
        _assert_same(seg(frames), _eager(seg, frames))
    assert seg.graphs.captures == 1 and FakeCapture.made[0].replays == 4
    seg.topk_ratio = 0.1  # a K that selects another region count: re-capture once
    for seed in range(3):
        frames = _frames(1, 10 + seed)
        _assert_same(seg(frames), _eager(seg, frames))
    assert seg.graphs.captures == 2
    seg.topk_ratio = 0.25  # back: still cached
    seg(_frames(1, 20))
    assert seg.graphs.captures == 2
    seg.topk_ratio = 0.26  # another K, same count (8 of 32): the same graph, and the same result as eager
    frames = _frames(1, 21)
    _assert_same(seg(frames), _eager(seg, frames))
    assert seg.graphs.captures == 2


def test_camera_count_change_recaptures_once_and_batches_replay(seg):
    for seed in range(3):
        seg(_frames(1, seed))
    for seed in range(3):  # a second camera joins: one capture for batch 2
        frames = _frames(2, seed)
        _assert_same(seg(frames), _eager(seg, frames))
    assert seg.graphs.captures == 2
    seg(_frames(1, 9))  # and leaves: batch 1 is still cached
    assert seg.graphs.captures == 2 and len(seg.graphs.graphs) == 2


def test_adaptive_k_and_graphs_off_run_eagerly(seg, small_model):
    seg.topk_ratio = AdaptiveK(0.5, 0.1, 0.5)
    frames = _frames(1, 0)
    _assert_same(seg(frames), _eager(seg, frames))
    assert seg.graphs.captures == 0
    off = Segmenter(small_model, ModelMeta.default(19, (128, 256)), device="cpu", processing="torch", cuda_graphs=False)
    assert off.graphs is None
    seg.topk_ratio = off.topk_ratio  # a float K, but graph=False: eager, as with cuda_graphs off
    x = seg.prepare(frames)
    with torch.inference_mode():
        assert all(torch.equal(a, b) for a, b in zip(seg.infer(x, graph=False), off.infer(x)))
    assert seg.graphs.captures == 0


def test_replays_with_another_top_k_selection_equal_eager_with_a_fake_capture(seg):
    """The GPU test's check, run here with the fake capture (so the check itself is tested in CI)."""
    _replay_vs_eager(seg, 0.0)
    assert seg.graphs.captures == 4


def test_a_failed_capture_runs_eagerly_warns_once_and_is_not_retried(seg):
    def broken(fn, x):
        raise RuntimeError("operation not permitted when stream is capturing")
    seg.graphs = GraphCache(capture=broken)
    frames = _frames(1, 0)
    with pytest.warns(RuntimeWarning, match="capture failed .*not permitted.*runs eagerly"):
        got = seg(frames)
    _assert_same(got, _eager(seg, frames))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_same(seg(_frames(1, 1)), _eager(seg, _frames(1, 1)))  # no second attempt, no second warning
    assert seg.graphs.captures == 0 and len(seg.graphs.failed) == 1


def test_least_recently_used_graph_is_dropped():
    made = []
    cache = GraphCache(max_graphs=2, capture=lambda fn, x: (made.append(x), fn)[1])
    for key in ("a", "b", "a", "c", "a", "b"):
        assert cache(key, lambda x: x + 1, 1) == 2
    assert made == [1, 1, 1, 1] and cache.captures == 4 and list(cache.graphs) == ["a", "b"]  # c evicted b; b again
    with pytest.raises(ValueError, match="max_graphs"):
        GraphCache(max_graphs=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; the fake-capture tests above cover the keying")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_graph_replay_equals_eager_on_fresh_inputs_and_another_k(small_model, precision):
    seg = Segmenter(small_model, ModelMeta.default(19, (128, 256)), device="cuda", precision=precision)
    assert seg.processing == "torch" and seg.graphs is not None
    tol = 1e-4 if precision == "fp32" else 2e-2
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # eager and graph alike
    try:
        _replay_vs_eager(seg, tol)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    assert not seg.graphs.failed, seg.graphs.failed  # capture is not proof, but it must happen
    assert seg.graphs.captures == 4  # (1, .25) (1, .1) (2, .25) (2, 1.0)
    frames = _frames(2, 99)
    a = seg(frames)
    graphs, seg.graphs = seg.graphs, None
    b = seg(frames)
    seg.graphs = graphs
    for x, y in zip(a, b):
        assert (x.labels == y.labels).mean() > 0.999 and np.array_equal(x.selected, y.selected)


def _replay_vs_eager(seg, tol):
    """Each key's first call captures, later ones replay; fresh frames every time, so a replay
    selects other regions than the capture did (checked) and must still equal eager."""
    selections = {}
    for i, (k, n) in enumerate(((0.25, 1), (0.25, 1), (0.1, 1), (0.25, 2), (1.0, 2), (0.1, 1))):
        seg.topk_ratio = k
        x = seg.prepare(_frames(n, 100 + i))  # fresh inputs each time
        with torch.inference_mode():
            eager = [t.clone() for t in seg.infer(x, graph=False)]
            graph = [t.clone() for t in seg.infer(x)]
        assert torch.equal(graph[2], eager[2])  # the same regions selected
        torch.testing.assert_close(graph[0].float(), eager[0].float(), atol=tol, rtol=tol)
        torch.testing.assert_close(graph[1].float(), eager[1].float(), atol=tol, rtol=tol)
        selections.setdefault((k, n), []).append(graph[2])
    for k in (0.25, 0.1):  # the replay's Top-K selection differs from the captured one
        first, again = selections[(k, 1)]
        assert not torch.equal(first, again)
