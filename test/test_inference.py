import numpy as np
import pytest
import torch

from fornet_ros.inference.checkpoint import CheckpointError, ModelMeta, load_model, make_checkpoint, read_checkpoint, save_checkpoint
from fornet_ros.inference import Segmenter, resolve_device, resolve_precision
from fornet_ros.model import create_model


def test_checkpoint_round_trip(checkpoint_path, small_model):
    model, meta = load_model(checkpoint_path)
    assert model.cfg == small_model.cfg
    assert meta.input_size == (128, 256) and len(meta.classes) == 19 and meta.palette[0] == (128, 64, 128)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(model(x)["logits"], small_model(x)["logits"])


def test_checkpoint_refuses_mismatch(tmp_path, small_model):
    ckpt = make_checkpoint(small_model)
    ckpt["model_config"]["backbone"]["channels"] = [32, 64, 128, 192]  # weights are fornet_s
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(tmp_path / "bad.pt")
    ckpt = make_checkpoint(small_model)
    ckpt["classes"] = ckpt["classes"][:5]
    torch.save(ckpt, tmp_path / "bad2.pt")
    with pytest.raises(CheckpointError, match="19 classes but 5 names"):
        read_checkpoint(tmp_path / "bad2.pt")
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a fornet_ros checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    # the older packaged files are the flat /1 layout and still load; a checkpoint saved now is /2
    from fornet_ros.inference.checkpoint import FORMAT, save_checkpoint
    from fornet_ros.model import create_model
    assert read_checkpoint("camvid")["format"] == "fornet_ros/1" and FORMAT == "fornet_ros/2"
    assert read_checkpoint("default")["format"] == "fornet_ros/2"  # trained this round
    save_checkpoint(tmp_path / "new.pt", create_model("fornet_s"))
    assert read_checkpoint(tmp_path / "new.pt")["format"] == "fornet_ros/2"
    torch.save({**read_checkpoint(tmp_path / "new.pt"), "format": "fornet_ros/3"}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format=fornet_ros/3"):
        read_checkpoint(tmp_path / "future.pt")


def test_segmenter_outputs_at_image_resolution(checkpoint_path, rgb):
    seg = Segmenter.from_checkpoint(checkpoint_path, device="cpu")
    assert seg.input_size == (128, 256) and seg.dtype == torch.float32
    r = seg(rgb)
    assert r.labels.shape == rgb.shape[:2] and r.labels.dtype == np.uint8 and r.labels.max() < 19
    assert r.importance.shape == rgb.shape[:2] and r.importance.dtype == np.float32
    assert 0 <= r.importance.min() and r.importance.max() <= 1
    assert r.confidence.dtype == np.float32 and 0 < r.confidence.min() and r.confidence.max() <= 1
    assert 0 < r.selected.mean() < 1  # K = 0.25 of the regions


def test_segmenter_batch_matches_single(checkpoint_path, rgb):
    seg = Segmenter.from_checkpoint(checkpoint_path, device="cpu")
    big = np.random.default_rng(1).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    batch = seg([rgb, big])
    assert [b.labels.shape for b in batch] == [rgb.shape[:2], big.shape[:2]]
    single = seg(big)
    assert (batch[1].labels == single.labels).mean() > 0.999
    np.testing.assert_allclose(batch[1].confidence, single.confidence, atol=1e-4)


def test_topk_changes_selected_fraction(checkpoint_path, rgb):
    seg = Segmenter.from_checkpoint(checkpoint_path, device="cpu")
    frac = []
    for k in (0.1, 0.5, 1.0):
        seg.topk_ratio = k
        frac.append(seg(rgb).selected.mean())
    assert frac[0] < frac[1] < frac[2] == 1.0
    with pytest.raises(ValueError, match="topk_ratio"):
        seg.topk_ratio = 1.5
    seg.topk_ratio = -1  # negative or None: the model's trained K (0.25 here)
    assert seg.topk_ratio == 0.25
    seg.topk_ratio = 0.5
    seg.topk_ratio = None
    assert seg.topk_ratio == 0.25


def test_float_input_equals_uint8(checkpoint_path, rgb):
    seg = Segmenter.from_checkpoint(checkpoint_path, device="cpu")
    a, b = seg(rgb), seg(rgb.astype(np.float32) / 255.0)
    assert (a.labels == b.labels).mean() > 0.999


@pytest.mark.parametrize("bad,msg", [
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((10, 10), np.uint8), "single-channel"),
    (np.zeros((10, 10, 4), np.uint8), r"\(H, W, 3\)"),
    (np.zeros((10, 10, 3), np.int32), "dtype int32"),
    (np.full((10, 10, 3), np.nan, np.float32), "NaN"),
    (np.full((10, 10, 3), 7.0, np.float32), r"\[0, 1\]"),
    ([[1, 2, 3]], "numpy array"),
])
def test_bad_input_raises_value_error(checkpoint_path, bad, msg):
    seg = Segmenter.from_checkpoint(checkpoint_path, device="cpu")
    with pytest.raises(ValueError, match=msg):
        seg(bad) if isinstance(bad, np.ndarray) else seg([bad])


def test_bad_settings(checkpoint_path):
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("int4", torch.device("cpu"))
    with pytest.raises(ValueError, match="CUDA"):
        resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="input_size"):
        Segmenter.from_checkpoint(checkpoint_path, device="cpu", input_size=(4, 4))
    with pytest.raises(ValueError, match="empty batch"):
        Segmenter.from_checkpoint(checkpoint_path, device="cpu")([])


def test_auto_device_is_cpu_without_cuda():
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        assert resolve_precision("auto", torch.device("cpu")) == torch.float32
    else:
        assert resolve_device("auto").type == "cuda"
        assert resolve_precision("auto", torch.device("cuda")) == torch.float16


@pytest.mark.parametrize("k", [0.1, 0.25, 1.0])
def test_sparse_onnx_export_matches_torch_and_keeps_the_sparse_ops(tmp_path, checkpoint_path, k):
    from fornet_ros.inference.export import export_onnx
    info = export_onnx(checkpoint_path, tmp_path / "m.onnx", size=(128, 256), topk_ratio=k)
    assert info["graph"] == "sparse" and info["max_abs_diff"] <= 1e-3
    assert {"TopK", "Gather", "ScatterND"} <= set(info["ops"])


def test_dense_onnx_export_has_no_region_gather(tmp_path, checkpoint_path):
    from fornet_ros.inference.export import export_onnx
    info = export_onnx(checkpoint_path, tmp_path / "d.onnx", size=(128, 256), dense=True)
    assert info["graph"] == "dense" and info["max_abs_diff"] <= 1e-3 and "ScatterND" not in info["ops"]


def test_onnx_file_alone_runs_the_segmenter(tmp_path, checkpoint_path, rgb):
    from fornet_ros.inference.export import export_onnx, read_onnx_metadata
    export_onnx(checkpoint_path, tmp_path / "m.onnx", topk_ratio=0.25, check=False)
    meta, extra = read_onnx_metadata(tmp_path / "m.onnx")
    assert meta == load_model(checkpoint_path)[1] and extra["topk_ratio"] == 0.25 and extra["graph"] == "sparse"
    ort_seg = Segmenter.from_checkpoint(tmp_path / "m.onnx", device="cpu")
    torch_seg = Segmenter.from_checkpoint(checkpoint_path, device="cpu")
    assert ort_seg.backend == "onnxruntime" and ort_seg.provider == "CPUExecutionProvider"
    assert ort_seg.input_size == (128, 256) and ort_seg.topk_ratio == 0.25 and ort_seg.classes == torch_seg.classes
    a, b = ort_seg([rgb, rgb[::-1].copy()]), torch_seg([rgb, rgb[::-1].copy()])
    for x, y in zip(a, b):
        assert (x.labels == y.labels).mean() > 0.999 and np.array_equal(x.selected, y.selected)
        np.testing.assert_allclose(x.confidence, y.confidence, atol=1e-4)
    with pytest.raises(ValueError, match="exported with K = 0.25"):
        ort_seg.topk_ratio = 0.5
    with pytest.raises(ValueError, match="exported for input"):
        Segmenter.from_checkpoint(tmp_path / "m.onnx", device="cpu", input_size=(64, 64))
    with pytest.raises(ValueError, match="needs a .onnx"):
        Segmenter.from_checkpoint(checkpoint_path, backend="onnxruntime")
    (tmp_path / "x.onnx").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot read ONNX"):
        Segmenter.from_checkpoint(tmp_path / "x.onnx")


def test_execution_provider_order():
    from fornet_ros.inference.runtime import select_providers
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers(gpu, "auto") == gpu
    assert select_providers(gpu[1:], "cuda:0") == gpu[1:]
    assert select_providers(gpu, "cpu") == ["CPUExecutionProvider"]
    assert select_providers(["CPUExecutionProvider"], "auto") == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="onnxruntime-gpu"):
        select_providers(["CPUExecutionProvider"], "cuda")


def test_untrained_model_refined_regions_flagged(tmp_path):
    model = create_model("fornet_s", focus=False)
    path = save_checkpoint(tmp_path / "off.pt", model, ModelMeta.default(19, (64, 64)))
    r = Segmenter.from_checkpoint(path, device="cpu")(np.zeros((40, 50, 3), np.uint8))
    assert r.importance.max() == 0 and not r.selected.any()


class _ColumnRunner:
    """A stand-in network whose class is the input column band: class = x_input // (w / C)."""
    backend, provider, default_topk, dtype = "torch", "cpu", 0.25, torch.float32
    device = torch.device("cpu")

    def __init__(self, classes=8):
        from fornet_ros.config import ModelConfig
        self.cfg, self.C = ModelConfig(num_classes=classes), classes

    def __call__(self, batch, k, mode):
        n, _, h, w = batch.shape
        x = (np.arange(w // 4) * 4 + 2) // (w // self.C)  # stride-4 logits, cell centres
        logits = np.zeros((n, self.C, h // 4, w // 4), np.float32)
        logits[:, x, :, np.arange(w // 4)] = 10.0
        grid = np.zeros((n, 1, -(-h // 32), -(-w // 32)), np.float32)
        return logits, grid, grid


@pytest.mark.parametrize("mode", ["stretch", "letterbox"])
@pytest.mark.parametrize("size", [(100, 400), (400, 100)])
def test_resize_modes_map_image_columns_to_the_right_input_columns(mode, size):
    seg = Segmenter(None, ModelMeta.default(8, (128, 128)), runner=_ColumnRunner(), resize_mode=mode)
    y0, x0, nh, nw = seg.content_box(size)
    if mode == "stretch":
        assert (y0, x0, nh, nw) == (0, 0, 128, 128)
    else:  # aspect kept: the long side fills the input, centred on the short one
        assert (nh, nw) == ((32, 128) if size[1] > size[0] else (128, 32))
        assert (y0, x0) == ((48, 0) if size[1] > size[0] else (0, 48))
    r = seg(np.zeros((*size, 3), np.uint8))
    assert r.labels.shape == size and r.importance.shape == size
    X = np.arange(size[1])
    want = ((x0 + (X + 0.5) * nw / size[1]) // 16).astype(int)
    assert (r.labels[size[0] // 2] == want).mean() > 0.9
    with pytest.raises(ValueError, match="resize_mode"):
        Segmenter(None, ModelMeta.default(8, (128, 128)), runner=_ColumnRunner(), resize_mode="crop")
