"""rclpy messages <-> numpy: what the node publishes decodes back to the same arrays."""

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from fornet_ros.mapping import GeometryError, GridSpec
from fornet_ros.node.images import to_mono8, to_rgb
from fornet_ros.ros.conversions import camera_model_from_info, fill_image, make_cloud, make_grid, rgb_to_image

RGB = np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_published_images_decode_to_the_same_rgb(encoding):
    m = rgb_to_image(Image(), RGB, Header(frame_id="x"), encoding)
    assert (m.height, m.width, m.step, m.encoding, m.header.frame_id) == (6, 10, 30, encoding, "x")
    np.testing.assert_array_equal(to_rgb(m), RGB)


def test_labels_round_trip():
    labels = RGB[:, :, 0] % 19
    m = fill_image(Image(), labels, Header())
    assert m.encoding == "mono8"
    np.testing.assert_array_equal(to_mono8(m), labels)


def test_rclpy_compressed_image_decodes():
    ok, buf = cv2.imencode(".png", RGB[:, :, ::-1])
    np.testing.assert_array_equal(to_rgb(CompressedImage(format="png", data=buf.tobytes())), RGB)


def test_cloud_layout_and_values():
    xyz = np.array([[1.0, 2.0, 0.2], [3.5, -1.0, 0.2]], np.float32)
    m = make_cloud(Header(frame_id="base_link"), xyz, np.array([13, 11]))
    assert [(f.name, f.offset) for f in m.fields] == [("x", 0), ("y", 4), ("z", 8), ("label", 12)]
    assert (m.width, m.point_step, m.row_step) == (2, 16, 32)
    pts = np.frombuffer(bytes(m.data), np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("label", "<u4")]))
    np.testing.assert_array_equal(pts["x"], xyz[:, 0])
    assert pts["label"].tolist() == [13, 11]


def test_grid_message():
    grid = GridSpec(0.5, 4, 3, (1.0, -2.0), "base_link")
    values = np.arange(12, dtype=np.int8).reshape(3, 4) - 1
    m = make_grid(Header(frame_id="base_link"), grid, values)
    assert (m.info.width, m.info.height, m.info.resolution) == (4, 3, 0.5)
    assert (m.info.origin.position.x, m.info.origin.position.y) == (1.0, -2.0)
    assert list(m.data) == values.ravel().tolist()


def test_camera_info_to_model():
    from sensor_msgs.msg import CameraInfo
    info = CameraInfo(width=200, height=150, distortion_model="plumb_bob", binning_x=2)
    info.k = [100.0, 0.0, 100.0, 0.0, 110.0, 75.0, 0.0, 0.0, 1.0]
    info.roi.width, info.roi.height = 100, 80
    cam = camera_model_from_info(info)
    assert (cam.width, cam.height, cam.k[4], cam.binning_x, cam.roi) == (200, 150, 110.0, 2, (0, 0, 80, 100))
    with pytest.raises(GeometryError, match="focal"):
        camera_model_from_info(CameraInfo(width=200, height=150))


def test_label_info():
    import json
    from fornet_ros.classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
    from fornet_ros.ros.conversions import LabelInfo, label_info
    m = label_info(CITYSCAPES_CLASSES, CITYSCAPES_PALETTE)
    if LabelInfo is not None:
        assert [(c.class_id, c.class_name) for c in m.class_map][:2] == [(0, "road"), (1, "sidewalk")]
    else:
        d = json.loads(m.data)
        assert d["classes"] == list(CITYSCAPES_CLASSES) and d["palette"][0] == list(CITYSCAPES_PALETTE[0])
        assert d["ignore_id"] == 255
