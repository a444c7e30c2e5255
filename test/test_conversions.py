import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from fornet_ros.ros.conversions import BadImageError, compressed_to_rgb, fill_image, image_to_rgb

RGB = np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)


def _img(arr, enc, pad=0):
    m = Image(height=arr.shape[0], width=arr.shape[1], encoding=enc)
    rows = arr.reshape(arr.shape[0], -1)
    if pad:
        rows = np.concatenate([rows, np.zeros((arr.shape[0], pad), rows.dtype)], 1)
    m.step = rows.shape[1] * arr.itemsize
    m.data = rows.tobytes()
    return m


@pytest.mark.parametrize("enc,arr", [
    ("rgb8", RGB), ("bgr8", RGB[:, :, ::-1]),
    ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 255, np.uint8)])),
    ("bgra8", np.dstack([RGB[:, :, ::-1], np.zeros(RGB.shape[:2], np.uint8)])),
])
def test_color_encodings(enc, arr):
    np.testing.assert_array_equal(image_to_rgb(_img(np.ascontiguousarray(arr), enc)), RGB)


def test_row_padding_is_removed():
    np.testing.assert_array_equal(image_to_rgb(_img(RGB, "rgb8", pad=2)), RGB)


def test_mono_and_bayer():
    gray = RGB[:, :, 0].copy()
    out = image_to_rgb(_img(gray, "mono8"))
    assert out.shape == (6, 10, 3) and (out[:, :, 1] == gray).all()
    bayer = image_to_rgb(_img(gray, "bayer_rggb8"))
    assert bayer.shape == (6, 10, 3) and bayer.dtype == np.uint8
    m16 = image_to_rgb(_img((gray.astype(np.uint16) * 257), "mono16"))
    assert abs(int(m16[0, 0, 0]) - int(gray[0, 0])) <= 1


@pytest.mark.parametrize("mutate,msg", [
    (lambda m: setattr(m, "encoding", "yuv_weird"), "unsupported encoding"),
    (lambda m: setattr(m, "step", 5), "step 5 <"),
    (lambda m: setattr(m, "height", 7), "expected step"),
    (lambda m: (setattr(m, "height", 0), setattr(m, "width", 0)), "empty"),
])
def test_bad_images(mutate, msg):
    m = _img(RGB, "rgb8")
    mutate(m)
    with pytest.raises(BadImageError, match=msg):
        image_to_rgb(m)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed(fmt):
    ok, buf = cv2.imencode("." + ("png" if fmt == "png" else "jpg"), RGB[:, :, ::-1])
    m = CompressedImage(format=fmt, data=buf.tobytes())
    out = compressed_to_rgb(m)
    assert out.shape == RGB.shape
    if fmt == "png":
        np.testing.assert_array_equal(out, RGB)
    with pytest.raises(BadImageError):
        compressed_to_rgb(CompressedImage(format=fmt, data=b"garbage"))


def test_fill_image_round_trip():
    hdr = Header(frame_id="x")
    m = fill_image(Image(), RGB, hdr, "rgb8")
    assert (m.height, m.width, m.step, m.header.frame_id) == (6, 10, 30, "x")
    np.testing.assert_array_equal(image_to_rgb(m), RGB)
