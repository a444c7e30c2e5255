"""images: every supported encoding decodes to the right RGB pixels from raw message fields."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from fornet_ros.node.images import ENCODINGS, BadImageError, decode_compressed, decode_raw, to_rgb

RGB = np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)
GRAY = RGB[:, :, 0].copy()


def _msg(arr, enc, pad=0, bigendian=False):
    """An Image-like message holding ``arr`` row by row, ``pad`` bytes of padding per row."""
    if bigendian:
        arr = arr.astype(arr.dtype.newbyteorder(">"))
    rows = np.ascontiguousarray(arr).reshape(arr.shape[0], -1).view(np.uint8)
    rows = np.concatenate([rows, np.zeros((arr.shape[0], pad), np.uint8)], 1)
    return SimpleNamespace(encoding=enc, height=arr.shape[0], width=arr.shape[1], step=rows.shape[1],
                           is_bigendian=int(bigendian), data=rows.tobytes())


def _mosaic(rgb, pattern):
    """Sample an RGB image into a Bayer mosaic: ``pattern`` names the colours of a 2x2 tile."""
    ch = {"r": 0, "g": 1, "b": 2}
    out = np.zeros(rgb.shape[:2], rgb.dtype)
    for i, c in enumerate(pattern):
        out[i // 2::2, i % 2::2] = rgb[i // 2::2, i % 2::2, ch[c]]
    return out


@pytest.mark.parametrize("enc,arr", [
    ("rgb8", RGB), ("bgr8", RGB[:, :, ::-1]), ("8UC3", RGB[:, :, ::-1]),
    ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 255, np.uint8)])),
    ("bgra8", np.dstack([RGB[:, :, ::-1], np.zeros(RGB.shape[:2], np.uint8)])),
    ("rgb16", RGB.astype(np.uint16) * 257), ("bgr16", RGB[:, :, ::-1].astype(np.uint16) * 257),
    ("rgba16", np.dstack([RGB.astype(np.uint16) * 257, np.zeros(RGB.shape[:2], np.uint16)])),
])
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_give_the_same_rgb(enc, arr, pad):
    np.testing.assert_array_equal(decode_raw(**vars(_msg(np.ascontiguousarray(arr), enc, pad))), RGB)


@pytest.mark.parametrize("enc,scale", [("mono8", 1), ("8UC1", 1), ("mono16", 257), ("16UC1", 257)])
def test_mono_encodings_give_gray_rgb(enc, scale):
    out = decode_raw(**vars(_msg(GRAY.astype(np.uint16 if scale > 1 else np.uint8) * scale, enc)))
    np.testing.assert_array_equal(out, np.dstack([GRAY] * 3))


def test_big_endian_16_bit():
    out = decode_raw(**vars(_msg(GRAY.astype(np.uint16) * 257, "mono16", bigendian=True)))
    np.testing.assert_array_equal(out[:, :, 0], GRAY)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_patterns_demosaic_to_the_true_colour(pattern, bits):
    flat = np.zeros((8, 8, 3), np.uint8) + np.array([200, 100, 50], np.uint8)  # uniform: demosaicing is exact
    mosaic = _mosaic(flat, pattern).astype(np.uint16 if bits == 16 else np.uint8) * (257 if bits == 16 else 1)
    out = decode_raw(**vars(_msg(mosaic, f"bayer_{pattern}{bits}")))
    np.testing.assert_array_equal(out[2:-2, 2:-2], flat[2:-2, 2:-2])


@pytest.mark.parametrize("enc,order", [("yuv422", "uyvy"), ("uyvy", "uyvy"), ("yuv422_yuy2", "yuyv"), ("yuyv", "yuyv")])
def test_yuv422_neutral_chroma_is_gray(enc, order):
    y = GRAY.astype(np.int32).clip(16, 235).astype(np.uint8)  # video range: Y 16..235
    packed = np.empty((6, 10, 2), np.uint8)
    packed[:, :, 0 if order == "yuyv" else 1] = y
    packed[:, :, 1 if order == "yuyv" else 0] = 128  # U = V = 128: no colour
    out = decode_raw(**vars(_msg(packed, enc)))
    assert out.shape == (6, 10, 3)
    assert np.abs(out.astype(int) - out[:, :, :1]).max() <= 1  # R = G = B
    assert np.corrcoef(out[:, :, 0].ravel(), y.ravel())[0, 1] > 0.99


def test_every_listed_encoding_is_tested():
    tested = {"rgb8", "bgr8", "8UC3", "rgba8", "bgra8", "rgb16", "bgr16", "rgba16", "mono8", "8UC1", "mono16",
              "16UC1", "yuv422", "uyvy", "yuv422_yuy2", "yuyv"} | {f"bayer_{p}{b}" for p in ("rggb", "bggr", "gbrg", "grbg")
                                                                 for b in (8, 16)}
    assert set(ENCODINGS) - tested <= {"8UC4", "16UC3", "16UC4", "bgra16"}  # same code paths as bgra8 / bgr16 / rgba16


@pytest.mark.parametrize("mutate,msg", [
    (dict(encoding="yuv_weird"), "unsupported encoding 'yuv_weird'"),
    (dict(encoding="32FC1"), "'32FC1' is not a camera image"),
    (dict(step=5), "step 5 < width 10 x 3 bytes per pixel"),
    (dict(height=7), "data has 180 bytes, expected step 30 x height 7 = 210"),
    (dict(height=0, width=0), "empty image"),
])
def test_bad_images_say_why(mutate, msg):
    fields = {**vars(_msg(RGB, "rgb8")), **mutate}
    with pytest.raises(BadImageError, match=msg):
        decode_raw(**fields)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_compressed(ext):
    ok, buf = cv2.imencode(ext, RGB[:, :, ::-1])
    out = to_rgb(SimpleNamespace(format=ext[1:], data=buf.tobytes()))
    assert out.shape == RGB.shape
    if ext == ".png":
        np.testing.assert_array_equal(out, RGB)
    flat = np.zeros((16, 16, 3), np.uint8) + np.array([200, 100, 50], np.uint8)  # channel order survives jpeg
    ok, buf = cv2.imencode(ext, flat[:, :, ::-1])
    assert np.abs(decode_compressed(ext[1:], buf).astype(int) - flat).max() <= 3
    ok, gray_png = cv2.imencode(".png", GRAY)
    np.testing.assert_array_equal(decode_compressed("png", gray_png), np.dstack([GRAY] * 3))
    with pytest.raises(BadImageError, match="cannot decode CompressedImage"):
        decode_compressed("jpeg", b"garbage")
    with pytest.raises(BadImageError, match="empty"):
        decode_compressed("jpeg", b"")


def test_message_data_types():
    """rclpy gives array('B'), rosbags numpy arrays, hand-made messages bytes or lists."""
    import array
    m = _msg(RGB, "rgb8")
    for data in (array.array("B", m.data), np.frombuffer(m.data, np.uint8), list(m.data), bytearray(m.data)):
        np.testing.assert_array_equal(decode_raw(**{**vars(m), "data": data}), RGB)


@pytest.mark.parametrize("enc", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_odd_width_422_is_a_bad_image_not_a_crash(enc):
    """Found by the fuzz matrix: OpenCV raised on an odd width; now a counted bad message."""
    from fornet_ros.node.images import BadImageError, decode_raw
    with pytest.raises(BadImageError, match="even width"):
        decode_raw(enc, 4, 5, 10, bytes(40))
