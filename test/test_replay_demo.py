"""Bag replay into the node over real DDS, and the one-command demo."""

import json
import os
import subprocess
import sys
import time

import pytest

from fornet_ros.bags import from_cityscapes, iter_frames
from fornet_ros.synthetic import write_cityscapes_like
from ros_harness import Collector, ros_env, start_node

DOMAIN = 140 + os.getpid() % 50


@pytest.fixture(scope="module")
def trained_like_ckpt(tmp_path_factory):
    import torch
    from conftest import spread_selector
    from fornet_ros.checkpoint import ModelMeta, save_checkpoint
    from fornet_ros.model import create_model
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "m.pt", spread_selector(create_model("fornet_s")),
                           ModelMeta.default(19, (64, 128)))


def test_bag_play_into_node_outputs_carry_bag_stamps(tmp_path, trained_like_ckpt):
    write_cityscapes_like(tmp_path / "cs", n=4, size=(64, 128))
    from_cityscapes(tmp_path / "cs", tmp_path / "bag", rate_hz=4.0)
    stamps = {s for _, s, _, _ in iter_frames(tmp_path / "bag")}
    env = ros_env(DOMAIN)
    node = start_node(env, f"checkpoint:={trained_like_ckpt}", "cameras:=[camera]", "input_reliability:=reliable",
                      "input_depth:=10", log_path=tmp_path / "node.log")
    col = Collector(("camera",), DOMAIN)
    try:
        assert col.wait_for(lambda: col.node.count_publishers("/camera/semantic/labels") > 0, timeout=60)
        time.sleep(1.0)
        play = subprocess.run([sys.executable, "-m", "fornet_ros.cli", "bag", "play", str(tmp_path / "bag")],
                              env=env, capture_output=True, text=True, timeout=120)
        assert play.returncode == 0, play.stderr
        assert "published 12 messages" in play.stdout
        assert col.wait_for(lambda: len(col.get("camera/semantic/labels")) >= 2, timeout=30)
        got = {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in col.get("camera/semantic/labels")}
        assert got <= stamps and len(got) >= 2
        m = col.get("camera/semantic/labels")[-1]
        assert (m.height, m.width, m.header.frame_id) == (64, 128, "camera_optical_frame")
    finally:
        col.close()
        node.send_signal(2)
        node.wait(15)


def test_demo_writes_report(tmp_path, trained_like_ckpt):
    env = {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN + 1)}
    p = subprocess.run([sys.executable, "-m", "fornet_ros.cli", "demo", "--out", str(tmp_path / "rep"),
                        "--checkpoint", str(trained_like_ckpt), "--frames", "4", "--size", "64", "128"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    rep = tmp_path / "rep"
    s = json.loads((rep / "summary.json").read_text())
    assert s["frames_in_bag"] == 4 and s["frames_segmented"] >= 2 and s["frames_scored"] == s["frames_segmented"]
    assert 0 <= s["metrics"]["miou"] <= 1 and "combined" in s["costmap_layers"]
    assert s["node_diagnostics"]["model"] == "fornet_s"
    index = (rep / "index.html").read_text()
    for f in ["images/frame_000_overlay.png", "images/frame_000_importance.png", "images/frame_000_truth.png",
              "images/costmap_combined.png", "images/montage.png"]:
        assert (rep / f).is_file() and f in index
    assert (rep / "index.md").is_file()


def test_demo_records_the_layers_of_a_custom_costmap_config(tmp_path, trained_like_ckpt):
    import yaml
    from fornet_ros.classes import CITYSCAPES_CLASSES
    layers = tmp_path / "layers.yaml"  # every class on the ground: an untrained model's cells get observed
    layers.write_text(yaml.safe_dump({"ground_classes": list(CITYSCAPES_CLASSES), "layers": [
        {"name": "drivable", "classes": ["road", "sidewalk"], "cost": 0},
        {"name": "everything_else", "classes": list(CITYSCAPES_CLASSES[2:]), "cost": 100}]}))
    code = ("import json, sys; from fornet_ros.ros.demo import run_demo; "
            "s = run_demo(sys.argv[1], checkpoint=sys.argv[2], frames=3, size=(64, 128), costmap_config=sys.argv[3]); "
            "print(json.dumps(s['costmap_layers']))")
    env = {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN + 3)}
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "rep"), str(trained_like_ckpt), str(layers)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads(p.stdout.strip().splitlines()[-1]) == ["combined", "drivable", "everything_else"]
    for layer in ("drivable", "everything_else"):
        assert (tmp_path / "rep" / "images" / f"costmap_{layer}.png").is_file()


def test_bench_node_reports_latency_and_overhead(trained_like_ckpt):
    p = subprocess.run([sys.executable, "-m", "fornet_ros.cli", "bench-node", "--checkpoint", str(trained_like_ckpt),
                        "--size", "64", "128", "--rate", "5", "--seconds", "2", "--domain", str(DOMAIN + 2)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout)
    assert r["sent"] == 10 and 0 < r["processed"] <= 10 and r["dropped"] == r["sent"] - r["processed"]
    assert r["node_e2e_ms_p50"] > 0 and r["model_alone_ms_p50"] > 0 and r["overhead_ratio_p50"] > 0
