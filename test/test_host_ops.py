"""The CPU pre/post-processing shortcuts (fornet_ros/inference/host_ops.py) give OpenCV's answers:
exactly, or for the frame's shrink within two grey levels."""

import cv2
import numpy as np
import pytest

from fornet_ros.inference import host_ops

MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def smooth_logits(c, h, w, seed):
    """Class scores that vary smoothly (a street frame's logits: large uniform areas, boundaries)."""
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((c, max(2, h // 6), max(2, w // 6))).astype(np.float32) * 4
    return np.stack([cv2.resize(ch, (w, h), interpolation=cv2.INTER_CUBIC) for ch in coarse])


def reference_argmax(logits, size):
    up = cv2.resize(logits.transpose(1, 2, 0), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return up.argmax(-1).astype(np.uint8)


def test_normalise_a_uint8_frame_through_the_table_equals_the_arithmetic():
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), np.uint8)
    out = np.full((37, 53, 3), np.nan, np.float32)
    host_ops.normalise(img, MEAN, STD, out)
    np.testing.assert_array_equal(out, (img.astype(np.float32) - MEAN) / STD)
    assert host_ops.normalise_table(tuple(MEAN), tuple(STD))[0, 255, 2] == np.float32((255 - MEAN[2]) / STD[2])


def test_normalise_a_float_frame_scales_it_to_0_255_first():
    img = np.random.default_rng(1).random((8, 9, 3)).astype(np.float32)
    out = np.empty((8, 9, 3), np.float32)
    host_ops.normalise(img, MEAN, STD, out)
    np.testing.assert_allclose(out, (img * 255 - MEAN) / STD, rtol=0, atol=1e-6)


@pytest.mark.parametrize("src,dst", [(96, 384), (96, 360), (45, 360), (192, 100), (64, 32), (10, 10), (1, 7)])
def test_linear_taps_reproduce_opencv_inter_linear(src, dst):
    row = np.random.default_rng(src * dst).standard_normal((1, src)).astype(np.float32)
    i0, i1, f = host_ops.linear_taps(src, dst)
    mine = (1 - f) * row[0, i0] + f * row[0, i1]
    theirs = cv2.resize(row, (dst, 1), interpolation=cv2.INTER_LINEAR)[0]
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=5e-5)  # OpenCV rounds its weights to float


@pytest.mark.parametrize("shape,size", [((19, 96, 192), (384, 768)), ((19, 96, 192), (360, 720)),
                                        ((19, 45, 60), (360, 480)), ((11, 96, 192), (200, 300)),
                                        ((19, 96, 192), (48, 96)), ((19, 40, 50), (40, 50)), ((5, 7, 9), (30, 41))])
def test_upsampled_argmax_equals_opencv_upsample_then_argmax(shape, size):
    logits = smooth_logits(*shape, seed=sum(shape) + size[0])
    np.testing.assert_array_equal(host_ops.upsampled_argmax(logits, size), reference_argmax(logits, size))


def test_upsampled_argmax_takes_the_shortcut_and_interpolates_the_rest():
    """Both branches run on a street-like map: most output pixels in uniform cells, the boundaries interpolated,
    and there the label differs from the nearest source label (so the interpolation is not skipped)."""
    logits = smooth_logits(19, 96, 192, seed=3)
    low = logits.argmax(0).astype(np.uint8)
    at = host_ops._gather_index(96, 192, 384, 768)
    nearest_tap = low.ravel().take(at)
    exact = reference_argmax(logits, (384, 768))
    uniform = (low[:-1, :-1] == low[1:, :-1]) & (low[:-1, :-1] == low[:-1, 1:]) & (low[:-1, :-1] == low[1:, 1:])
    assert 0.3 < uniform.mean() < 0.95
    assert 0 < (nearest_tap != exact).mean() < 0.5
    np.testing.assert_array_equal(host_ops.upsampled_argmax(logits, (384, 768)), exact)


def test_upsampled_argmax_of_one_class_is_all_zeros():
    assert not host_ops.upsampled_argmax(np.ones((1, 4, 5), np.float32), (9, 11)).any()


@pytest.mark.parametrize("src,dst,halvings", [((1024, 2048), (448, 896), 1), ((1024, 2048), (512, 1024), 1),
                                              ((1024, 2048), (256, 512), 2), ((720, 1280), (360, 480), 1),
                                              ((1024, 2048), (600, 900), 0), ((1023, 2048), (448, 896), 0),
                                              ((300, 500), (97, 171), 1)])
def test_shrink_halves_exactly_then_area_averages_like_one_inter_area(src, dst, halvings):
    """Halvings while both sides are even and at least twice the target's; the result is INTER_AREA's
    to within two grey levels (0.3 on average on a smooth frame), exactly INTER_AREA's at 2x and
    when nothing is halved."""
    assert host_ops.area_halvings(src, dst) == halvings
    img = cv2.GaussianBlur(np.random.default_rng(1).integers(0, 256, (*src, 3), np.uint8), (0, 0), 3)
    out = host_ops.shrink(img, dst)
    ref = cv2.resize(img, (dst[1], dst[0]), interpolation=cv2.INTER_AREA)
    assert out.shape == ref.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - ref)
    if halvings == 0 or src == (2 * dst[0], 2 * dst[1]):
        assert diff.max() == 0
    else:
        assert diff.max() <= 2 and diff.mean() < 0.4, (diff.max(), diff.mean())


def test_resize_frame_averages_along_a_shrinking_side_and_interpolates_along_a_growing_one():
    img = cv2.GaussianBlur(np.random.default_rng(2).integers(0, 256, (500, 600, 3), np.uint8), (0, 0), 2)
    assert host_ops.resize_frame(img, (500, 600)) is img
    # height shrinks (area), width grows (bilinear)
    mixed = host_ops.resize_frame(img, (448, 896))
    expect = cv2.resize(cv2.resize(img, (600, 448), interpolation=cv2.INTER_AREA), (896, 448), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(mixed, expect)
    # both grow: bilinear; both shrink: shrink; a float frame (0-1) the same way
    np.testing.assert_array_equal(host_ops.resize_frame(img, (720, 960)),
                                  cv2.resize(img, (960, 720), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(host_ops.resize_frame(img, (250, 300)), host_ops.shrink(img, (250, 300)))
    f = img.astype(np.float32) / 255
    out = host_ops.resize_frame(f, (448, 896))
    assert out.dtype == np.float32 and np.abs(out * 255 - expect).max() <= 1.0
