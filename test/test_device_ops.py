"""The device path's torch pre/post-processing agrees with the OpenCV path (on the CPU, in CI):
labels identical up to ties, maps within one grey level; and the Segmenter picks between them."""

import copy

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fornet_ros.inference.checkpoint import ModelMeta
from fornet_ros.errors import FornetError
from fornet_ros.inference import Segmentation, Segmenter
from fornet_ros.node.pipeline import render


def _pair(model, input_size=(128, 256), **kw):
    meta = ModelMeta.default(19, input_size)
    return (Segmenter(model, meta, device="cpu", **kw),
            Segmenter(model, meta, device="cpu", processing="torch", **kw))


def _image(size, seed=0):
    """A smooth random image (camera-like: neighbouring pixels correlate)."""
    img = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    return cv2.GaussianBlur(img, (0, 0), 3)


def test_auto_processing_is_opencv_on_the_cpu_and_torch_needs_a_torch_runner(small_model, tmp_path, checkpoint_path):
    cv, th = _pair(small_model)
    assert cv.processing == "opencv" and th.processing == "torch"
    assert cv.graphs is None and th.graphs is None  # CUDA graphs: CUDA only
    pytest.importorskip("onnx")  # installed in CI; a bare GPU machine (scripts/gpu_check.sh) may lack it
    with pytest.raises(FornetError, match="processing must be one of"):
        Segmenter(small_model, ModelMeta.default(19, (64, 64)), device="cpu", processing="gpu")
    with pytest.raises(FornetError, match="max_graphs must be >= 1"):
        Segmenter(small_model, ModelMeta.default(19, (64, 64)), device="cpu", max_graphs=0)
    from fornet_ros.inference.export import export_onnx
    export_onnx(checkpoint_path, tmp_path / "m.onnx", check=False)
    with pytest.raises(FornetError, match="processing 'torch' needs the torch backend, not onnxruntime"):
        Segmenter.from_checkpoint(tmp_path / "m.onnx", device="cpu", processing="torch")


@pytest.mark.parametrize("mode", ["stretch", "letterbox"])
@pytest.mark.parametrize("size", [(97, 171), (256, 512), (300, 500), (720, 1280), (64, 100)])
def test_postprocessing_agrees_with_opencv(small_model, mode, size):
    """The same network outputs through both post-processings: labels equal wherever the two best
    upsampled logits are not tied (margin > 1e-4), confidence and importance within one grey level
    of uint8, the selected mask identical."""
    cv, th = _pair(small_model, resize_mode=mode)
    g = torch.Generator().manual_seed(size[0])
    logits = F.avg_pool2d(torch.randn(1, 19, 32 + 4, 64 + 4, generator=g) * 6, 5, 1)  # smooth, (1, 19, 32, 64)
    importance = torch.rand(1, 1, 4, 8, generator=g)
    selected = (importance > importance.flatten().kthvalue(24).values).float()
    out_t = (logits, importance, selected)
    a = cv.finish(tuple(o.numpy() for o in out_t), [size])[0]
    b = th.finish(out_t, [size])[0]
    assert a.labels.shape == b.labels.shape == size and b.labels.dtype == np.uint8
    differ = a.labels != b.labels
    if differ.any():  # only at ties: the top-2 margin of the logits upsampled to the image
        y0, x0, nh, nw = cv.content_box(size)
        up = F.interpolate(F.interpolate(logits, cv.input_size, mode="bilinear")[..., y0:y0 + nh, x0:x0 + nw],
                           size, mode="bilinear")[0]
        top2 = up.topk(2, dim=0).values
        assert (top2[0] - top2[1])[torch.from_numpy(differ)].max() < 1e-3
    assert differ.mean() < 1e-3
    for name in ("confidence", "importance"):
        d = np.abs(a.map_u8(name).astype(int) - b.map_u8(name).astype(int))
        assert d.max() <= 1, name
        assert b.map_u8(name).dtype == np.uint8 and b.map_u8(name).shape == size
    assert np.array_equal(a.selected, b.selected)
    np.testing.assert_allclose(b.confidence, a.confidence, atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("mode", ["stretch", "letterbox"])
@pytest.mark.parametrize("size,max_grey", [((256, 512), 0.51), ((64, 128), 1.0), ((300, 500), 4.0),
                                           ((720, 1280), 4.0), ((97, 171), 1.0),
                                           ((128, 400), 1.5), ((150, 200), 4.0)])
def test_preprocessing_agrees_with_opencv(small_model, mode, size, max_grey):
    """Normalised network inputs within a few grey levels: OpenCV rounds the resized uint8 frame
    after each step (a halving, the area step, fixed-point bilinear when enlarging) where the device
    path rounds once. (128, 400) and (150, 200) shrink one side and keep or enlarge the other: area
    along the first, bilinear along the second, in both paths."""
    cv, th = _pair(small_model, resize_mode=mode)
    img = _image(size)
    a, b = cv.prepare([img]), th.prepare([img])
    assert isinstance(b, torch.Tensor) and b.shape == a.shape and b.is_contiguous(memory_format=torch.channels_last)
    grey = np.abs(a - b.numpy()) * cv.std[None, :, None, None]
    assert grey.max() <= max_grey and grey.mean() < 0.6
    if mode == "letterbox" and cv.content_box(size)[2:] != cv.input_size:  # the padding is the mean colour: 0
        y0, x0, nh, nw = cv.content_box(size)
        pad = np.ones(a.shape[2:], bool)
        pad[y0:y0 + nh, x0:x0 + nw] = False
        assert pad.any() and not b.numpy()[0][:, pad].any()


def test_torch_processing_end_to_end_matches_opencv(small_model, rgb):
    cv, th = _pair(small_model)
    big = _image((300, 500), seed=3)
    a, b = cv([rgb, big]), th([rgb, big])
    for x, y in zip(a, b):
        assert x.labels.shape == y.labels.shape and (x.labels == y.labels).mean() > 0.99
        assert np.abs(x.map_u8("confidence").astype(int) - y.map_u8("confidence")).mean() < 1.0
    f = th(rgb.astype(np.float32) / 255.0)  # float input: the same frame
    assert (f.labels == b[0].labels).mean() > 0.999


def test_torch_processing_computes_only_the_maps_asked_for(small_model, rgb):
    _, th = _pair(small_model)
    r = th(rgb, outputs={"confidence"})
    assert r.importance is None and r.selected is None and r.map_u8("importance") is None
    assert r.map_u8("confidence").dtype == np.uint8 and r.confidence.dtype == np.float32
    r = th(rgb, outputs=())
    assert r.confidence is None and r.labels.shape == rgb.shape[:2]


def test_segmentation_maps_convert_between_float_and_uint8_once():
    f = np.array([[0.0, 0.5, 1.0, 0.2]], np.float32)
    r = Segmentation(np.zeros((1, 4), np.uint8), importance=f)
    assert r.map_u8("importance").tolist() == [[0, 128, 255, 51]] and r.map_u8("importance") is r.map_u8("importance")
    assert r.confidence is None and r.map_u8("confidence") is None
    u = Segmentation(np.zeros((1, 4), np.uint8), confidence_u8=np.array([[0, 128, 255, 51]], np.uint8))
    assert u.confidence.dtype == np.float32 and np.abs(u.confidence - f).max() <= 0.5 / 255 + 1e-6
    assert u.confidence is u.confidence  # made once
    arrays, skipped = render(u, np.zeros((1, 4, 3), np.uint8), {"confidence", "importance"}, [(0, 0, 0)] * 19, 0.5)
    assert arrays["confidence"][0] is u.map_u8("confidence") and "importance" in skipped



@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; the CPU tests above compare the same ops")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_device_path_agrees_with_the_cpu_opencv_path(small_model, rgb, precision):
    meta = ModelMeta.default(19, (128, 256))
    cpu = Segmenter(small_model, meta, device="cpu")
    gpu = Segmenter(copy.deepcopy(small_model), meta, device="cuda", precision=precision)  # .to() moves in place
    assert gpu.processing == "torch" and gpu.graphs is not None
    frames = [_image((300, 500), seed=s) for s in range(3)] + [rgb]
    for i in range(2):  # the second round reuses the pinned upload buffers with other frames
        batch = frames[i:i + 2]
        for a, b in zip(cpu(batch), gpu(batch)):
            assert (a.labels == b.labels).mean() > (0.99 if precision == "fp32" else 0.98)
            assert np.abs(a.map_u8("confidence").astype(int) - b.map_u8("confidence")).mean() < 2.0
            assert (a.selected == b.selected).mean() > 0.95
    assert all(buf.is_pinned() for buf, _ in gpu._upload._pinned.values()) and len(gpu._upload._pinned) == 2


@pytest.mark.parametrize("name,agree", [("fast", 0.995), ("default", 0.995)])
def test_packaged_model_end_to_end_torch_processing_agrees_with_opencv(name, agree):
    """A trained model on a camera-sized scene (720x1280 -> its input size): whole-pipeline labels
    agree (the area shrink is OpenCV's to within a rounding grey level), the same regions are refined.
    With torch's own area pool the pretrained default disagreed on 1 % of the pixels here."""
    from fornet_ros.tools.synthetic import make_scene
    cv = Segmenter.from_checkpoint(name, device="cpu")
    th = Segmenter.from_checkpoint(name, device="cpu", processing="torch")
    img = make_scene(720, 1280, seed=1)[0]
    a, b = cv(img), th(img)
    assert (a.labels == b.labels).mean() > agree and (a.selected == b.selected).mean() > 0.99
    assert np.abs(a.map_u8("confidence").astype(int) - b.map_u8("confidence")).mean() < 1.0


def test_colorize_lut_equals_the_palette_lookup():
    """colorize (cv2.LUT for uint8 labels) = palette[label], unknown IDs and ignore black, any layout."""
    from fornet_ros.classes import CITYSCAPES_PALETTE, colorize
    rng = np.random.default_rng(0)
    ref = np.zeros((256, 3), np.uint8)
    ref[:19] = CITYSCAPES_PALETTE
    big = rng.integers(0, 256, (60, 90)).astype(np.uint8)
    for lab in (big, big[::2, 1::3], big[:1, :1], rng.integers(0, 19, (5, 7)).astype(np.int64)):
        out = colorize(lab)
        assert out.dtype == np.uint8 and np.array_equal(out, ref[lab])
    assert not colorize(np.full((2, 2), 255, np.uint8)).any()


def test_node_parameters_reach_the_segmenter(checkpoint_path, tmp_path):
    """processing / cuda_graphs: node parameters passed through to the Segmenter; an impossible
    combination is the Segmenter's one error (the node exits with it at start-up)."""
    from fornet_ros.inference.export import export_onnx
    from fornet_ros.node.params import NodeParams, build_segmenter
    seg, _ = build_segmenter(NodeParams(checkpoint=str(checkpoint_path), device="cpu", processing="torch",
                                        cuda_graphs=False))
    assert seg.processing == "torch" and seg.graphs is None
    assert build_segmenter(NodeParams(checkpoint=str(checkpoint_path), device="cpu"))[0].processing == "opencv"
    export_onnx(checkpoint_path, tmp_path / "m.onnx", check=False)
    with pytest.raises(FornetError, match="needs the torch backend"):
        build_segmenter(NodeParams(checkpoint=str(tmp_path / "m.onnx"), device="cpu", processing="torch"))
    with pytest.raises(ValueError, match="processing must be"):
        NodeParams(processing="gpu")


@pytest.mark.parametrize("src,dst", [((1024, 2048), (448, 896)), ((1024, 2048), (256, 512)), ((300, 500), (97, 171)),
                                     ((448, 1280), (448, 896))])
def test_the_device_shrink_is_the_host_shrink(src, dst):
    """The device path's area matrices compose host_ops.shrink's halvings: equal on a float frame
    (no uint8 rounding between steps), within one grey level on a uint8 one."""
    from fornet_ros.inference import device_ops, host_ops
    img = _image(src, seed=2)
    f = img.astype(np.float32)
    np.testing.assert_allclose(device_ops.area_resize(torch.from_numpy(f), dst).numpy(), host_ops.shrink(f, dst),
                               atol=2e-3)
    dev = (device_ops.area_resize(torch.from_numpy(img).float(), dst) + 0.5).floor().numpy()
    assert np.abs(dev - host_ops.shrink(img, dst)).max() <= 1
