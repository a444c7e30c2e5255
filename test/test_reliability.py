"""Issue #13 (defects 1, 2, 3, 9, 10) on the pure pieces and the costmap adapter with a fake node:
no DDS, each test well under a second."""

import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from fornet_ros.classes import CITYSCAPES_CLASSES
from fornet_ros.mapping import CameraModel, GeometryError, GridSpec, LayerConfig, Pose, build_lookup
from ros_harness import FakeNode

W, H, F = 200, 150, 100.0
K = (F, 0, W / 2, 0, F, H / 2, 0, 0, 1)


# -- 1: malformed CameraInfo -------------------------------------------------------------------
@pytest.mark.parametrize("model,n", [("plumb_bob", 3), ("plumb_bob", 7), ("equidistant", 2),
                                     ("rational_polynomial", 5), ("", 4)])
def test_distortion_vector_of_the_wrong_length_is_rejected(model, n):
    with pytest.raises(GeometryError, match=f"got {n}"):
        CameraModel(W, H, K, (0.01,) * n, model)


@pytest.mark.parametrize("model,n", [("plumb_bob", 5), ("plumb_bob", 0), ("equidistant", 4),
                                     ("rational_polynomial", 8)])
def test_distortion_vector_of_the_right_length_projects(model, n):
    cam = CameraModel(W, H, K, (0.01,) * n, model)
    assert build_lookup(cam, Pose(z=1.5), GridSpec(), (H // 2, W // 2)).valid_pixels > 0


def _costmap(**kw):
    from fornet_ros.node.params import NodeParams
    from fornet_ros.ros.costmap import SemanticCostmap
    cfg = LayerConfig.from_dict({"ground_classes": list(CITYSCAPES_CLASSES),
                                 "layers": [{"name": "road", "classes": ["road"], "cost": 10}]}, CITYSCAPES_CLASSES)
    params = NodeParams(use_tf=False, grid_width=100, grid_height=100, grid_origin=(0.0, -5.0), **kw)
    node = FakeNode()
    return node, SemanticCostmap(node, params, cfg, {"cam0": Pose(z=1.5), "cam1": Pose(z=1.5, yaw=3.14159)})


def _info(d=(), model="plumb_bob", h=H, w=W):
    from sensor_msgs.msg import CameraInfo
    return CameraInfo(height=h, width=w, k=[float(v) for v in (F, 0, w / 2, 0, F, h / 2, 0, 0, 1)],
                      d=list(d), distortion_model=model)


def _header(sec, frame="cam"):
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header
    return Header(stamp=Time(sec=sec), frame_id=frame)


def test_one_cameras_failing_projection_leaves_the_others_grid():
    node, cm = _costmap()
    labels = np.zeros((H, W), np.uint8)
    # cam1's projection raises inside OpenCV (what an equidistant D of 2 coefficients did)
    cm.lookup = (lambda orig: lambda cam, info, header, shape: (
        build_lookup(CameraModel(W, H, K), Pose(z=1.5), cm.grid, shape) if cam == "cam0" else
        cv2.fisheye.undistortPoints(np.zeros((1, 1, 2)), np.eye(3), np.zeros(2))))(cm.lookup)
    problems = cm.update([("cam0", _header(5), labels, _info(), 1.0), ("cam1", _header(5), labels, _info(), 1.0)],
                         now_s=1.0)
    assert set(problems) == {"cam1"} and "error" in problems["cam1"]
    grid = np.array(node.published["semantic_costmap/combined"][-1].data)
    assert (grid >= 0).sum() > 100  # cam0 still made the grid


def test_bad_distortion_from_camera_info_is_reported_not_raised():
    node, cm = _costmap()
    labels = np.zeros((H, W), np.uint8)
    problems = cm.update([("cam0", _header(5), labels, _info(), 1.0),
                          ("cam1", _header(5), labels, _info((0.1, 0.2), "equidistant"), 1.0)], now_s=1.0)
    assert set(problems) == {"cam1"} and "D of equidistant must hold 0 or 4 coefficients, got 2" in problems["cam1"]
    assert node.published["semantic_costmap/combined"]


# -- 2: stamps ----------------------------------------------------------------------------------
def test_stamp_verdicts():
    from fornet_ros.node.frames import stamp_verdict
    now = 5_000 * 10**9
    assert stamp_verdict(now - 10**8, now, 0, 1000) == (None, None, 100.0)
    assert stamp_verdict(now + 3600 * 10**9, now, 0, 1000)[:2] == ("future", None)
    assert stamp_verdict(now + 3600 * 10**9, now, 0, 0)[:2] == (None, None)  # check off
    assert stamp_verdict(0, now, 0, 1000) == (None, "zero_stamp", None)  # processed, flagged
    assert stamp_verdict(0, now, 500, 1000) == ("stale", "zero_stamp", None)  # age unknown: dropped
    assert stamp_verdict(now - 10**9, now, 500, 1000)[:2] == ("stale", None)
    assert stamp_verdict(123, 0, 500, 1000) == (None, None, None)  # no clock yet (sim time)


def test_future_stamped_silent_camera_neither_pins_nor_excludes():
    node, cm = _costmap(costmap_window_s=0.5)
    labels = np.zeros((H, W), np.uint8)
    cm.update([("cam0", _header(1000 + 3600), labels, _info(), 10.0)], now_s=10.0)  # then silent
    for i in range(1, 4):
        cm.update([("cam1", _header(1000 + i), labels, _info(), 10.0 + i * 0.3)], now_s=10.0 + i * 0.3)
    grid = node.published["semantic_costmap/combined"][-1]
    assert grid.header.stamp.sec == 1003  # the healthy camera's stamp, not the future one
    assert list(cm.window.latest) == ["cam1"]  # cam0 expired


def test_zero_stamped_camera_is_fused_and_the_grid_gets_the_clock():
    node, cm = _costmap()
    cm.update([("cam0", _header(0), np.zeros((H, W), np.uint8), _info(), 1.0)], now_s=1.0)
    grid = node.published["semantic_costmap/combined"][-1]
    assert grid.header.stamp.sec > 1_600_000_000  # wall clock, not 0


def test_counters_and_diagnostics_levels_for_errors_and_stamps():
    from fornet_ros.node.diagnostics import ERROR, OK, WARN, camera_status
    from fornet_ros.node.frames import FrameSlots
    from fornet_ros.node.params import NodeParams
    t = [100.0]
    slots = FrameSlots(["a", "b"], clock=lambda: t[0])
    for cam in ("a", "b"):
        slots.put(cam, "f")
    slots.take(timeout=0)
    slots.error("a", "costmap: error: bad D")
    slots.done("a", 100.0, 1.0)
    slots.flagged("b", "zero_stamp", "header stamp is 0")
    slots.dropped("b", "future", "3600000 ms ahead")
    s = slots.stats()
    assert (s["a"].errors, s["a"].processed, s["b"].zero_stamp, s["b"].future) == (1, 1, 1, 1)
    p = NodeParams()
    level, msg, values = camera_status(s["a"], p)
    assert level == ERROR and "bad D" in msg and values["errors"] == "1"
    level, msg, values = camera_status(s["b"], p)
    assert level == WARN and "future" in msg and values["dropped_future_stamp"] == "1" and values["zero_stamps"] == "1"
    s = slots.stats()  # a new window without problems: back to OK, totals kept
    assert camera_status(s["a"], p)[0] == OK and s["a"].errors == 1


# -- 9: losses in transport -----------------------------------------------------------------------
def test_sequence_gaps_count_as_lost_per_publisher():
    from fornet_ros.node.frames import FrameSlots
    slots = FrameSlots(["cam"])
    for seq in (1, 2, 5, 6):
        slots.put("cam", "f", seq, "pubA")
    slots.put("cam", "f", 1, "pubB")  # a second publisher starts at 1: no gap
    slots.put("cam", "f", 3, "pubA")  # publisher restarted: starts over
    slots.put("cam", "f", 4, "pubA")
    slots.put("cam", "f", None)  # middleware without sequence numbers
    s = slots.stats()["cam"]
    assert s.lost == 2 and s.window_warnings == 2 and "lost in transport" in s.last_problem


def test_publication_seq_from_message_info():
    from fornet_ros.ros.conversions import publication_seq
    assert publication_seq({"publication_sequence_number": 7, "publisher_gid": {"data": [1, 2]}})[0] == 7
    assert publication_seq({"publication_sequence_number": None}) == ()
    assert publication_seq({"publication_sequence_number": 2**64 - 1}) == ()  # unsupported by the RMW


# -- 3: input size ----------------------------------------------------------------------------
def _png_header(w, h):
    import struct
    import zlib
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + b"\0" * 64)


def test_compressed_size_is_read_from_the_header():
    from fornet_ros.node.images import compressed_size
    ok, png = cv2.imencode(".png", np.zeros((37, 53, 3), np.uint8))
    ok, jpg = cv2.imencode(".jpg", np.zeros((37, 53, 3), np.uint8))
    ok, prog = cv2.imencode(".jpg", np.zeros((37, 53, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert compressed_size(png) == ("png", 53, 37)
    assert compressed_size(jpg) == ("jpeg", 53, 37)
    assert compressed_size(prog) == ("jpeg", 53, 37)
    assert compressed_size(_png_header(10000, 10000)) == ("png", 10000, 10000)
    assert compressed_size(b"\xff\xd8\xff") is None and compressed_size(b"GIF89a") is None


def test_huge_images_are_rejected_before_decoding():
    from fornet_ros.node.images import BadImageError, DecodeOptions, decode_compressed, decode_raw
    opt = DecodeOptions(max_pixels=20_000_000)
    t = time.monotonic()
    with pytest.raises(BadImageError, match="10000x10000 = 100000000 pixels > max_input_pixels 20000000"):
        decode_compressed("png", _png_header(10000, 10000), opt)
    with pytest.raises(BadImageError, match="too large"):  # never touches the (absent) data
        decode_raw("rgb8", 10000, 10000, 30000, b"", options=opt)
    assert time.monotonic() - t < 0.1
    ok, tiff = cv2.imencode(".tiff", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(BadImageError, match="not PNG or JPEG"):
        decode_compressed("tiff", tiff, opt)
    assert decode_compressed("tiff", tiff).shape == (8, 8, 3)  # without a limit: anything OpenCV reads


def test_lookup_cache_is_bounded_by_bytes():
    from fornet_ros.mapping import LookupCache
    built = []

    def make(n):
        def build():
            built.append(n)
            return SimpleNamespace(nbytes=40)
        return build
    cache = LookupCache(max_bytes=100)
    for n in range(5):
        cache.get(n, make(n))
    assert len(cache) == 2 and cache.nbytes == 80
    cache.get(4, make(4))
    assert built == [0, 1, 2, 3, 4]  # a hit does not rebuild

    def boom():
        built.append("boom")
        raise GeometryError("bad model")
    for _ in range(3):
        with pytest.raises(GeometryError):
            cache.get("bad", boom)
    assert built.count("boom") == 1  # a failure is remembered, not rebuilt per frame


def test_a_24_megapixel_frame_costs_one_bounded_lookup():
    node, cm = _costmap()
    labels = np.zeros((4000, 6000), np.uint8)
    t = time.monotonic()
    problems = cm.update([("cam0", _header(5), labels, _info(h=4000, w=6000), 1.0)], now_s=1.0)
    took = time.monotonic() - t
    assert problems == {} and node.published["semantic_costmap/combined"]
    assert cm.cache.nbytes < 64 << 20, cm.cache.nbytes
    assert took < 3.0, took  # was ~21 s at full label resolution


# -- 10: encodings ------------------------------------------------------------------------------
def _raw(arr, enc):
    rows = np.ascontiguousarray(arr).reshape(arr.shape[0], -1).view(np.uint8)
    return dict(encoding=enc, height=arr.shape[0], width=arr.shape[1], step=rows.shape[1], data=rows.tobytes())


@pytest.mark.parametrize("enc,dtype,nchan", [("32FC3", np.float32, 3), ("32FC1", np.float32, 1),
                                             ("64FC1", np.float64, 1), ("16SC1", np.int16, 1), ("8SC3", np.int8, 3)])
def test_float_and_signed_encodings_are_not_camera_images(enc, dtype, nchan):
    from fornet_ros.node.images import BadImageError, decode_raw
    arr = np.full((4, 6, nchan), np.nan if dtype in (np.float32, np.float64) else 1, dtype)
    with pytest.raises(BadImageError, match=f"'{enc}' is not a camera image"):
        decode_raw(**_raw(arr, enc))


def test_generic_colour_encodings_need_an_explicit_order():
    from fornet_ros.node.images import BadImageError, DecodeOptions, decode_raw
    rgb = np.random.default_rng(0).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    with pytest.raises(BadImageError, match="'8UC3' has no channel order"):
        decode_raw(**_raw(rgb, "8UC3"), options=DecodeOptions(generic_order="reject"))
    np.testing.assert_array_equal(decode_raw(**_raw(rgb, "8UC3"), options=DecodeOptions(generic_order="rgb")), rgb)
    np.testing.assert_array_equal(decode_raw(**_raw(rgb[:, :, ::-1], "8UC3"),
                                             options=DecodeOptions(generic_order="bgr")), rgb)
    rgba = np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)])
    np.testing.assert_array_equal(decode_raw(**_raw(rgba, "8UC4"), options=DecodeOptions(generic_order="rgb")), rgb)


def test_the_node_default_rejects_generic_colour_encodings():
    from fornet_ros.node.params import NodeParams
    assert NodeParams().generic_color_order == "reject"


@pytest.mark.parametrize("bits", [10, 12, 14])
def test_12_bit_data_in_mono16_is_not_black(bits):
    from fornet_ros.node.images import DecodeOptions, decode_raw
    ramp = (np.arange(64, dtype=np.int64).reshape(8, 8) * ((1 << bits) - 1) // 63).astype(np.uint16)
    out = decode_raw(**_raw(ramp, "mono16"))
    assert out.max() == 255 and out[..., 0].ravel().tolist() == sorted(out[..., 0].ravel().tolist())
    np.testing.assert_array_equal(out[..., 0], np.rint(ramp * (255 / ((1 << bits) - 1))).astype(np.uint8))
    fixed = decode_raw(**_raw(ramp, "mono16"), options=DecodeOptions(bit_depth=16))  # as before: dark
    assert fixed.max() == round(((1 << bits) - 1) * 255 / 65535)
