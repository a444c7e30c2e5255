"""segmentation_node as a process and what it tells its user: stop signals at any moment of the
start-up (a separate process, real signals), one INFO line per lifecycle step, and parameters a
params file gives that the node does not have (real rclpy, in process)."""

import os
import signal
import time

import pytest

from ros_harness import ros_env, start_node

DOMAIN = 170 + os.getpid() % 30


def _mapped(pid: int, word: str) -> bool:
    try:
        return word in open(f"/proc/{pid}/maps").read()
    except OSError:
        return False


@pytest.mark.parametrize("library", ["numpy", "_rclpy"])
def test_a_signal_during_the_imports_is_one_line_and_exit_0(tmp_path, library):
    """SIGINT while the node still imports (numpy, rclpy loaded: the moment a Ctrl-C in the first
    second, or ros2 launch stopping the node after a bad bag:=, hits): no KeyboardInterrupt traceback
    and exit -2 any more, but one line and exit 0."""
    log = tmp_path / "node.log"
    proc = start_node(ros_env(DOMAIN), "autostart:=false", log_path=log)
    try:
        end = time.monotonic() + 60
        while not _mapped(proc.pid, library) and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.002)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = log.read_text().splitlines()
    assert "Traceback" not in log.read_text() and "KeyboardInterrupt" not in log.read_text(), lines
    assert len(lines) == 1 and "SIGINT received during start-up: exiting" in lines[0], lines


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_once_running_is_logged(tmp_path, sig):
    log = tmp_path / "node.log"
    proc = start_node(ros_env(DOMAIN + 1), "autostart:=false", log_path=log)
    try:
        end = time.monotonic() + 60
        while "waiting for a lifecycle manager" not in log.read_text() and time.monotonic() < end:
            time.sleep(0.05)
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert f"[fornet_segmentation]: {sig.name} received: shutting down" in text and "Traceback" not in text, text


# -- in process ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch
    from fornet_ros.inference.checkpoint import ModelMeta, save_checkpoint
    from fornet_ros.model import create_model
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "m.pt", create_model("fornet_s", topk_ratio=0.125),
                           ModelMeta.default(19, (64, 128)))


@pytest.fixture
def make_node():
    """make_node(args, **overrides): a SegmentationNode (autostart false) in its own context,
    started with these command-line ``args`` (e.g. --ros-args --params-file f)."""
    import rclpy
    from rclpy.parameter import Parameter
    from fornet_ros.ros.node import SegmentationNode
    made = []

    def make(args=(), **overrides):
        ros_env(DOMAIN + 2)
        ctx = rclpy.Context()
        rclpy.init(args=["segmentation_node", *args], context=ctx, domain_id=DOMAIN + 2)
        node = SegmentationNode(context=ctx, parameter_overrides=[
            Parameter("autostart", value=False), Parameter("costmap_enabled", value=False),
            *(Parameter(k, value=v) for k, v in overrides.items())])
        made.append((node, ctx))
        return node

    yield make
    for node, ctx in made:
        node.stop()
        node.destroy_node()
        ctx.try_shutdown()


def test_misspelled_parameters_are_reported_once_at_configure(make_node, tmp_path, capfd):
    from rclpy.lifecycle import TransitionCallbackReturn as R
    params = tmp_path / "p.yaml"
    params.write_text("/**:\n  ros__parameters:\n    topk_ratoi: 0.5\n    cameras: [front]\n"
                      "    camera_pose.rear: [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]\n    self_mask_rowz.front: 10\n"
                      "fornet_segmentation:\n  ros__parameters:\n    devcie: cpu\n    zzz_nothing_alike: 1\n"
                      "other_node:\n  ros__parameters:\n    not_ours: 1\n")
    node = make_node(["--ros-args", "--params-file", str(params)], checkpoint=str(tmp_path / "missing.pt"))
    capfd.readouterr()
    assert node.trigger_configure() == R.FAILURE  # the missing checkpoint; the report comes first
    assert node.trigger_configure() == R.FAILURE
    err = capfd.readouterr().err
    reports = [line for line in err.splitlines() if "does not have" in line]
    assert len(reports) == 1, err
    line = reports[0]
    assert "[WARN]" in line and "parameters this node does not have, ignored:" in line
    assert "topk_ratoi (did you mean topk_ratio?)" in line
    assert "devcie (did you mean device?)" in line
    assert "self_mask_rowz.front (did you mean self_mask_rows.front?)" in line
    assert "camera_pose" not in line  # a camera this launch does not use (one file, several set-ups)
    assert "zzz_nothing_alike" in line and "zzz_nothing_alike (" not in line
    assert "not_ours" not in line  # another node's entry
    assert "cameras" not in line  # declared names are not reported


def test_known_parameters_give_no_report(make_node, checkpoint, capfd):
    from rclpy.lifecycle import TransitionCallbackReturn as R
    node = make_node(checkpoint=str(checkpoint), cameras=["cam0"], topk_ratio=0.25, use_sim_time=False,
                     **{"camera_pose.cam0": [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]})
    assert node.trigger_configure() == R.SUCCESS
    assert "does not have" not in capfd.readouterr().err


def test_each_lifecycle_step_is_one_info_line(make_node, checkpoint, capfd):
    from rclpy.lifecycle import TransitionCallbackReturn as R
    node = make_node(checkpoint=str(checkpoint), cameras=["cam0"])
    steps = [("configure", node.trigger_configure, "loaded and warmed up"),
             ("activate", node.trigger_activate, "active: cameras"),
             ("deactivate", node.trigger_deactivate, "deactivated:"),
             ("cleanup", node.trigger_cleanup, "cleaned up:"),
             ("shutdown", node.trigger_shutdown, "shut down from unconfigured")]
    for name, trigger, words in steps:
        capfd.readouterr()
        assert trigger() == R.SUCCESS, name
        info = [line for line in capfd.readouterr().err.splitlines() if "[INFO]" in line and words in line]
        assert len(info) == 1, (name, info)
    assert node.finalized
