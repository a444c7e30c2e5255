"""Issue #23.2 over real DDS: the node runs a foreign ONNX model (foreign_onnx.py: its own classes,
BGR, NHWC, 96x128) from its description file; the classes reach labels, label_info, colours and
the costmap layers, and a costmap config naming a class the model lacks stops the start-up."""

import json
import os
import signal

import numpy as np
import pytest
import yaml

import foreign_onnx as F
from ros_harness import Collector, add_subscription, ros_env, start_node

DOMAIN = 180 + os.getpid() % 30


def _frame():
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header
    from fornet_ros.ros.conversions import rgb_to_image
    rgb, _ = F.scene()
    return rgb_to_image(Image(), rgb, Header(stamp=Time(sec=50, nanosec=7), frame_id="cam0_optical"), "bgr8")


def _camera_info():
    from sensor_msgs.msg import CameraInfo
    info = CameraInfo(height=120, width=160, distortion_model="plumb_bob")
    info.k = [80.0, 0.0, 80.0, 0.0, 80.0, 60.0, 0.0, 0.0, 1.0]
    return info


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return F.build(tmp_path_factory.mktemp("foreign_node") / "colournet.onnx")


def test_the_node_runs_a_foreign_model_with_its_classes(model, tmp_path):
    from nav_msgs.msg import OccupancyGrid
    from fornet_ros.node.images import to_mono8, to_rgb
    from fornet_ros.inference import Segmenter
    layers = tmp_path / "layers.yaml"  # water is named nowhere: reported once
    layers.write_text(yaml.safe_dump({"ground_classes": ["grass"], "obstacle_classes": ["crate"], "layers": [
        {"name": "crates", "classes": ["crate"], "cost": 100}, {"name": "grass", "classes": ["grass"], "cost": 20}]}))
    env = ros_env(DOMAIN)
    log = tmp_path / "node.log"
    proc = start_node(env, f"checkpoint:={model}", f"costmap_config:={layers}", "cameras:=[cam0]",
                      "diagnostics_period_s:=0.5", "grid_width:=100", "grid_height:=100", "grid_origin:=[0.0, -5.0]",
                      "use_tf:=false", log_path=log)
    col = Collector(("cam0",), DOMAIN)
    for layer in ("crates", "grass"):
        add_subscription(col, OccupancyGrid, f"semantic_costmap/{layer}")
    frame = _frame()

    def publish():
        col.info_pubs["cam0"].publish(_camera_info())
        col.pubs["cam0"].publish(frame)
    try:
        wanted = ("cam0/semantic/labels", "cam0/semantic/color", "cam0/semantic/confidence", "semantic/label_info",
                  "semantic_costmap/crates", "semantic_costmap/grass", "/diagnostics")
        assert col.wait_for(lambda: all(col.get(t) for t in wanted), timeout=60, publish=publish), \
            log.read_text()[-3000:]
        info = json.loads(col.get("semantic/label_info")[-1].data)
        assert info["classes"] == F.CLASSES and info["palette"] == F.PALETTE
        want = Segmenter.from_checkpoint(model, device="cpu")(to_rgb(frame)).labels
        labels = to_mono8(col.get("cam0/semantic/labels")[-1])
        np.testing.assert_array_equal(labels, want)
        assert (labels == F.scene()[1]).mean() > 0.98  # BGR fed as BGR: red is crate
        np.testing.assert_array_equal(to_rgb(col.get("cam0/semantic/color")[-1]), np.asarray(F.PALETTE, np.uint8)[labels])
        crates = np.array(col.get("semantic_costmap/crates")[-1].data, np.int8)
        grass = np.array(col.get("semantic_costmap/grass")[-1].data, np.int8)
        assert (crates == 100).any() and (grass == 20).any() and not (crates == 20).any()
        assert not col.get("cam0/semantic/importance")  # no importance map in a foreign model
        diag = col.get("/diagnostics")[-1].status[0]
        assert {kv.key: kv.value for kv in diag.values}["model"] == "colournet"
        reports = [line for line in log.read_text().splitlines() if "never in the grids" in line]
        assert len(reports) == 1 and reports[0].rstrip().endswith(": water"), reports
    finally:
        col.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


@pytest.mark.parametrize("config,words", [
    (None, ["costmap_config", "unknown classes", "'road'", "water", "costmap_enabled: false"]),
    ({"ground_classes": ["grass"], "layers": [{"name": "cars", "classes": ["car"], "cost": 100}]},
     ["costmap_config", "unknown classes ['car']", "known: ['water', 'grass', 'crate']"]),
])
def test_a_costmap_class_the_model_lacks_stops_the_start_up(model, tmp_path, config, words):
    params = [f"checkpoint:={model}", "cameras:=[cam0]"]
    if config is not None:
        (tmp_path / "layers.yaml").write_text(yaml.safe_dump(config))
        params.append(f"costmap_config:={tmp_path / 'layers.yaml'}")
    proc = start_node(ros_env(DOMAIN + 1), *params)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out[-2000:]
    errors = [line for line in out.splitlines() if "error:" in line]
    assert len(errors) == 1 and all(w in errors[0] for w in words), out[-2000:]
    assert "Traceback" not in out
