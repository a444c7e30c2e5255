"""launch/segment.launch.py: its argument logic (fornet_ros/node/launch_logic.py, no launch needed) and,
when the ``launch``/``launch_ros`` packages are importable, the launch file's actions evaluated with
launch's own API (skipped otherwise: CI has no launch package). docs/launch.md says what was run
with the real ``ros2 launch``."""

import argparse
import importlib.util
import os
from pathlib import Path

import pytest

from fornet_ros.node import launch_logic as L
from fornet_ros.node.launch_logic import LaunchArgumentError

ROOT = Path(__file__).resolve().parents[1]
PARAMS = str(ROOT / "config" / "fornet.yaml")
PROFILE = str(ROOT / "config" / "fastdds_large_images.xml")


def one_line_error(excinfo, *words):
    msg = str(excinfo.value)
    assert "\n" not in msg and msg
    for w in words:
        assert w in msg, (w, msg)


# -- ros2 bag play --------------------------------------------------------------------------------
def rosbag2_play_parser():
    """The arguments of rosbag2's `ros2 bag play` verb that matter here (ros2bag/verb/play.py):
    a positional bag, --rate, and --clock with an OPTIONAL frequency (nargs='?', const=40)."""
    def positive_float(text):
        value = float(text)
        if value <= 0:
            raise ValueError(text)
        return value

    p = argparse.ArgumentParser(prog="ros2 bag play", exit_on_error=False)
    p.add_argument("bag_file")
    p.add_argument("-r", "--rate", type=positive_float, default=1.0)
    p.add_argument("--clock", type=positive_float, nargs="?", const=40, default=0)
    return p


def parse_play(cmd):
    assert cmd[:3] == ["ros2", "bag", "play"]
    return rosbag2_play_parser().parse_args(cmd[3:])


def test_bag_play_cmd_puts_the_bag_before_clock():
    cmd = L.bag_play_cmd("/data/run 1")
    assert cmd == ["ros2", "bag", "play", "/data/run 1", "--clock"]
    args = parse_play(cmd)
    assert args.bag_file == "/data/run 1" and args.clock == 40 and args.rate == 1.0


def test_bag_play_cmd_rate():
    args = parse_play(L.bag_play_cmd("/data/bag", "0.5"))
    assert args.bag_file == "/data/bag" and args.rate == 0.5 and args.clock == 40
    for bad in ("0", "-1", "fast"):
        with pytest.raises(LaunchArgumentError) as e:
            L.bag_play_cmd("/data/bag", bad)
        one_line_error(e, "bag_rate")


def test_old_clock_first_command_line_is_what_failed():
    # the previous launch file's order: --clock swallows the path as its frequency
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        parse_play(["ros2", "bag", "play", "--clock", "/data/bag"])


# -- overrides: only what the user gave -----------------------------------------------------------
def test_defaults_give_no_overrides():
    assert L.node_overrides({}) == {}
    assert L.node_overrides({name: "" for name in L.ARGUMENTS}) == {}
    assert L.node_overrides({"checkpoint": "  ", "device": ""}) == {}


def test_given_arguments_become_typed_overrides():
    got = L.node_overrides({"checkpoint": "/m/a.pt", "device": "cuda:1", "camera": "front",
                            "use_sim_time": "True", "image_topic": "/x/image", "log_level": "debug"})
    assert got == {"checkpoint": "/m/a.pt", "device": "cuda:1", "cameras": ["front"], "use_sim_time": True}
    assert L.node_overrides({"device": "cpu"}) == {"device": "cpu"}


@pytest.mark.parametrize("text,value", [("true", True), ("True", True), ("TRUE", True), ("1", True),
                                        ("yes", True), ("false", False), ("False", False), ("0", False),
                                        ("no", False), ("NO", False)])
def test_use_sim_time_values(text, value):
    assert L.node_overrides({"use_sim_time": text}) == {"use_sim_time": value}


@pytest.mark.parametrize("text", ["maybe", "2", "ture", "enable"])
def test_use_sim_time_rejects_anything_else(text):
    with pytest.raises(LaunchArgumentError) as e:
        L.node_overrides({"use_sim_time": text})
    one_line_error(e, "use_sim_time", text)


# -- camera names and remappings ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["camera", "front", "cam_0", "_hidden", "/robot/front", "robot/front", "~/cam"])
def test_valid_cameras(name):
    assert L.validate_camera(name) == name


@pytest.mark.parametrize("name", ["", "1cam", "front/", "a//b", "front cam", "cam-1", "/", "robot/2nd", "~cam"])
def test_invalid_cameras_give_one_clear_line(name):
    with pytest.raises(LaunchArgumentError) as e:
        L.validate_camera(name)
    one_line_error(e, "camera:=", "not a valid ROS namespace")
    if name.strip():  # an empty camera:= is "not given"
        with pytest.raises(LaunchArgumentError):
            L.node_overrides({"camera": name})


@pytest.mark.parametrize("image,info", [("/my_cam/image_raw", "/my_cam/camera_info"),
                                        ("/my_cam/rgb/image_rect_color", "/my_cam/rgb/camera_info"),
                                        ("my_cam/image_raw", "my_cam/camera_info"),
                                        ("/image", "/camera_info"), ("image", "camera_info"),
                                        ("~/image", "~/camera_info")])
def test_camera_info_beside_the_image(image, info):
    assert L.camera_info_for(image) == info


def test_image_topic_remaps_image_and_its_camera_info():
    assert L.remappings("camera", "/my_cam/image_raw") == [
        ("camera/image_raw", "/my_cam/image_raw"),
        ("camera/image_raw/compressed", "/my_cam/image_raw/compressed"),
        ("camera/camera_info", "/my_cam/camera_info")]
    assert L.remappings("front", "/a/img", "/b/info")[-1] == ("front/camera_info", "/b/info")
    assert L.remappings("front", "", "/b/info") == [("front/camera_info", "/b/info")]
    assert L.remappings("front") == []


def test_bad_topics_are_errors():
    with pytest.raises(LaunchArgumentError) as e:
        L.remappings("front", "/my cam/image")
    one_line_error(e, "image_topic:=")
    with pytest.raises(LaunchArgumentError) as e:
        L.remappings("front", "/cam/image", "/cam/")
    one_line_error(e, "camera_info_topic:=")


def write(path, text):
    path.write_text(text)
    return str(path)


def test_cameras_in_params_file(tmp_path):
    assert L.cameras_in_params_file(PARAMS) == ["camera"]
    f = write(tmp_path / "p.yaml", "/**:\n  ros__parameters:\n    cameras: [a, b]\n"
                                   "/fornet_segmentation:\n  ros__parameters:\n    cameras: [front]\n")
    assert L.cameras_in_params_file(f) == ["front"]
    assert L.cameras_in_params_file(write(tmp_path / "q.yaml", "other_node:\n  ros__parameters:\n"
                                                                "    cameras: [x]\n")) is None
    with pytest.raises(LaunchArgumentError) as e:
        L.cameras_in_params_file(write(tmp_path / "bad.yaml", "a: [\n"))
    one_line_error(e, "params_file:=", "YAML")


def test_remap_camera_comes_from_camera_or_the_params_file(tmp_path):
    assert L.remap_camera({"camera": "rear"}, PARAMS) == "rear"
    assert L.remap_camera({}, PARAMS) == "camera"
    front = write(tmp_path / "front.yaml", "/**:\n  ros__parameters:\n    cameras: [front]\n")
    assert L.remap_camera({}, front) == "front"
    two = write(tmp_path / "two.yaml", "/**:\n  ros__parameters:\n    cameras: [left, right]\n")
    with pytest.raises(LaunchArgumentError) as e:
        L.remap_camera({}, two)
    one_line_error(e, "camera:=", "left")


# -- log level, Fast DDS profile, exits -----------------------------------------------------------
def test_log_level_args():
    assert L.log_level_args("") == []
    assert L.log_level_args("DEBUG") == ["--log-level", "DEBUG"]
    assert L.log_level_args("fornet_segmentation:=warn") == ["--log-level", "fornet_segmentation:=warn"]
    with pytest.raises(LaunchArgumentError) as e:
        L.log_level_args("loud")
    one_line_error(e, "log_level")


def test_fastdds_profile_keeps_the_users():
    env_var = L.FASTDDS_ENV
    assert L.fastdds_profile({env_var: "/mine.xml"}, PROFILE) is None  # None: leave the environment alone
    assert L.fastdds_profile({}, PROFILE) == PROFILE
    assert L.fastdds_profile({env_var: ""}, PROFILE) == PROFILE
    assert L.fastdds_profile({env_var: "/mine.xml"}, PROFILE, given="/arg.xml") == "/arg.xml"


def test_exit_error():
    assert L.exit_error("segmentation node", 0, shutting_down=False) is None
    assert L.exit_error("segmentation node", 1, shutting_down=True) is None  # Ctrl-C, SIGTERM escalation
    assert L.exit_error("segmentation node", -15, shutting_down=True) is None
    assert L.exit_error("segmentation node", 1, shutting_down=False) == \
        "segmentation node failed (exit code 1); ending the launch"
    assert "signal 11" in L.exit_error("ros2 bag play", -11, shutting_down=False)


# -- the whole plan -------------------------------------------------------------------------------
@pytest.fixture
def path_with_ros2(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "ros2"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    return str(bin_dir)


def test_plan_without_arguments_changes_nothing():
    plan = L.make_plan({name: "" for name in L.ARGUMENTS}, {"PATH": ""}, PARAMS, PROFILE)
    assert plan == L.LaunchPlan(params_file=PARAMS, overrides={}, remappings=[], ros_args=[],
                                bag_cmd=None, fastdds_profile=PROFILE)
    assert L.make_plan({}, {L.FASTDDS_ENV: "/mine.xml"}, PARAMS, PROFILE).fastdds_profile is None


def test_plan_with_arguments(tmp_path, path_with_ros2):
    bag = tmp_path / "bag"
    bag.mkdir()
    front = write(tmp_path / "front.yaml", "/**:\n  ros__parameters:\n    cameras: [front]\n    device: cpu\n")
    plan = L.make_plan({"params_file": front, "image_topic": "/my_cam/image_raw", "bag": str(bag),
                        "bag_rate": "2", "use_sim_time": "1", "log_level": "warn"},
                       {"PATH": path_with_ros2}, PARAMS, PROFILE)
    assert plan.params_file == front
    assert plan.overrides == {"use_sim_time": True}  # device and cameras stay the params file's
    assert ("front/image_raw", "/my_cam/image_raw") in plan.remappings
    assert ("front/camera_info", "/my_cam/camera_info") in plan.remappings
    assert plan.ros_args == ["--log-level", "warn"]
    assert parse_play(plan.bag_cmd).bag_file == str(bag)


@pytest.mark.parametrize("values,words", [
    ({"params_file": "/nonexistent/p.yaml"}, ["params_file:=", "does not exist"]),
    ({"bag": "/nonexistent/bag"}, ["bag:=", "does not exist"]),
    ({"bag_rate": "2"}, ["bag_rate:=", "bag:="]),
    ({"camera": "9lives"}, ["camera:="]),
    ({"use_sim_time": "y"}, ["use_sim_time:="]),
])
def test_plan_errors(values, words, path_with_ros2):
    with pytest.raises(LaunchArgumentError) as e:
        L.make_plan(values, {"PATH": path_with_ros2}, PARAMS, PROFILE)
    one_line_error(e, *words)


def test_plan_lifecycle_bring_up():
    """autostart:=false leaves the node to an external manager (nav2_lifecycle_manager); managed:=true
    makes the launch that manager: the node runs with autostart false and the plan says managed, and
    autostart:= then says whether the launch activates it after configuring it."""
    no = {name: "" for name in L.ARGUMENTS}
    assert not L.make_plan(no, {}, PARAMS, PROFILE).managed
    plan = L.make_plan({**no, "autostart": "false"}, {}, PARAMS, PROFILE)
    assert plan.overrides == {"autostart": False} and not plan.managed
    plan = L.make_plan({**no, "managed": "true"}, {}, PARAMS, PROFILE)
    assert plan.overrides == {"autostart": False} and plan.managed and plan.activate
    plan = L.make_plan({**no, "managed": "false", "autostart": "true"}, {}, PARAMS, PROFILE)
    assert plan.overrides == {"autostart": True} and not plan.managed
    plan = L.make_plan({**no, "managed": "true", "autostart": "true"}, {}, PARAMS, PROFILE)
    assert plan.overrides == {"autostart": False} and plan.managed and plan.activate
    with pytest.raises(LaunchArgumentError) as e:
        L.make_plan({**no, "managed": "maybe"}, {}, PARAMS, PROFILE)
    one_line_error(e, "managed:=")


def test_managed_with_autostart_false_configures_only():
    """managed:=true autostart:=false: the launch configures the node and leaves it inactive (it used
    to activate it anyway, ignoring autostart)."""
    plan = L.make_plan({"managed": "true", "autostart": "false"}, {}, PARAMS, PROFILE)
    assert plan.managed and not plan.activate and plan.overrides == {"autostart": False}
    assert L.after_first_configure("inactive", shutting_down=False, activate=plan.activate) is None
    with pytest.raises(LaunchArgumentError) as e:
        L.make_plan({"managed": "true", "autostart": "later"}, {}, PARAMS, PROFILE)
    one_line_error(e, "autostart:=")


def test_after_first_configure():
    assert L.after_first_configure("inactive", shutting_down=False, activate=True) == L.ACTIVATE
    assert L.after_first_configure("unconfigured", shutting_down=False, activate=True) == L.FAIL
    assert L.after_first_configure("errorprocessing", shutting_down=False, activate=False) == L.FAIL
    # Ctrl-C during the bring-up: configure ends while the launch shuts down; ask nothing more
    assert L.after_first_configure("inactive", shutting_down=True, activate=True) is None
    assert L.after_first_configure("unconfigured", shutting_down=True, activate=True) is None


def test_fastdds_profile_argument_must_exist(tmp_path):
    with pytest.raises(LaunchArgumentError) as e:
        L.make_plan({"fastdds_profile": "/nonexistent.xml"}, {}, PARAMS, PROFILE)
    one_line_error(e, "fastdds_profile:=", "/nonexistent.xml", "does not exist")
    with pytest.raises(LaunchArgumentError):
        L.make_plan({"fastdds_profile": str(tmp_path)}, {}, PARAMS, PROFILE)  # a folder is no profile
    assert L.make_plan({"fastdds_profile": PROFILE}, {}, PARAMS, PROFILE).fastdds_profile == PROFILE


def test_plan_bag_needs_ros2_on_path(tmp_path):
    # launch emits no exit event for a process it cannot start: check before starting anything
    with pytest.raises(LaunchArgumentError) as e:
        L.make_plan({"bag": str(tmp_path)}, {"PATH": str(tmp_path / "empty")}, PARAMS, PROFILE)
    one_line_error(e, "ros2")


# -- the launch file itself, through launch's API (needs launch + launch_ros) ------------------------
@pytest.fixture
def launch_file(monkeypatch):
    pytest.importorskip("launch")
    pytest.importorskip("launch_ros")
    spec = importlib.util.spec_from_file_location("segment_launch", ROOT / "launch" / "segment.launch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "get_package_share_directory", lambda pkg: str(ROOT))  # share = the checkout
    return mod


def evaluate(mod, monkeypatch, **given):
    """Declare the arguments, set the given ones as `ros2 launch ... name:=value` would, and run the
    OpaqueFunction: the actions it returns."""
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    ld = mod.generate_launch_description()
    declared = [e for e in ld.entities if isinstance(e, DeclareLaunchArgument)]
    assert {d.name for d in declared} == set(L.ARGUMENTS)
    context = LaunchContext()
    context.launch_configurations.update(given)
    for d in declared:
        d.visit(context)
    (opaque,) = [e for e in ld.entities if isinstance(e, OpaqueFunction)]
    return context, opaque.visit(context)


def test_launch_file_arguments_are_described(launch_file):
    from launch.actions import DeclareLaunchArgument
    ld = launch_file.generate_launch_description()
    declared = {e.name: e for e in ld.entities if isinstance(e, DeclareLaunchArgument)}
    assert set(declared) == set(L.ARGUMENTS)
    for name, d in declared.items():
        assert d.description == L.ARGUMENTS[name]
        assert [s.text for s in d.default_value] in ([], [""])


def test_launch_file_actions(launch_file, monkeypatch, tmp_path, path_with_ros2):
    import yaml
    from launch.actions import ExecuteProcess, RegisterEventHandler, SetEnvironmentVariable
    from launch.utilities import perform_substitutions
    from launch_ros.actions import Node
    monkeypatch.delenv(L.FASTDDS_ENV, raising=False)
    monkeypatch.setenv("PATH", path_with_ros2 + os.pathsep + os.environ.get("PATH", ""))
    bag = tmp_path / "bag"
    bag.mkdir()
    context, actions = evaluate(launch_file, monkeypatch, camera="front", use_sim_time="yes",
                                image_topic="/my_cam/image_raw", bag=str(bag), checkpoint="123")
    (env,) = [a for a in actions if isinstance(a, SetEnvironmentVariable)]
    assert perform_substitutions(context, env.name) == L.FASTDDS_ENV
    assert perform_substitutions(context, env.value) == PROFILE
    (node,) = [a for a in actions if isinstance(a, Node)]
    node._perform_substitutions(context)
    assert ("front/camera_info", "/my_cam/camera_info") in node.expanded_remapping_rules
    files = [p for p, is_file in node._Node__expanded_parameter_arguments]
    assert files[0] == PARAMS
    overrides = yaml.safe_load(Path(files[1]).read_text())["/**"]["ros__parameters"]
    assert overrides == {"checkpoint": "123", "cameras": ["front"], "use_sim_time": True}
    (player,) = [a for a in actions if isinstance(a, ExecuteProcess) and not isinstance(a, Node)]
    assert [perform_substitutions(context, part) for part in player.cmd] == L.bag_play_cmd(str(bag))
    assert len([a for a in actions if isinstance(a, RegisterEventHandler)]) == 2


def test_launch_file_ends_the_launch_when_the_node_exits(launch_file, monkeypatch):
    from launch.actions import EmitEvent, RegisterEventHandler
    from launch.events import Shutdown
    from launch.events.process import ProcessExited
    from launch_ros.actions import Node
    monkeypatch.setenv(L.FASTDDS_ENV, "/mine.xml")
    context, actions = evaluate(launch_file, monkeypatch)
    assert not [a for a in actions if type(a).__name__ == "SetEnvironmentVariable"]  # theirs is kept
    (node,) = [a for a in actions if isinstance(a, Node)]
    (handler,) = [a.event_handler for a in actions if isinstance(a, RegisterEventHandler)]

    def exited(code):
        return ProcessExited(action=node, name="segmentation_node-1", cmd=["segmentation_node"], cwd=None,
                             env=None, pid=1, returncode=code)

    assert handler.matches(exited(1))
    # failed: an exception, which LaunchService.run() turns into exit code 1 after shutting down
    with pytest.raises(RuntimeError, match=r"segmentation node failed \(exit code 1\)"):
        handler.handle(exited(1), context)
    (emit,) = handler.handle(exited(0), context)
    assert isinstance(emit, EmitEvent) and isinstance(emit.event, Shutdown)


def _managed_bring_up(launch_file, monkeypatch, **given):
    """The managed node, its one start-up handler (registered in a fresh context) and the context."""
    from launch.actions import RegisterEventHandler
    from launch_ros.actions import LifecycleNode
    context, actions = evaluate(launch_file, monkeypatch, managed="true", **given)
    (node,) = [a for a in actions if isinstance(a, LifecycleNode)]
    handlers = [a for a in actions if isinstance(a, RegisterEventHandler)
                and type(a.event_handler).__name__ == "OnStateTransition"]
    assert len(handlers) == 1  # one handler for the first configure, whatever its outcome
    handlers[0].visit(context)
    return node, handlers[0].event_handler, context


def _configured(node, context, handler, goal):
    """Deliver the node's configuring -> ``goal`` transition to the handler, as the launch does:
    the entities it returns are visited with the event in the context's locals."""
    from launch_ros.events.lifecycle import StateTransition
    from lifecycle_msgs.msg import State, TransitionEvent
    from lifecycle_msgs.msg import Transition as T
    msg = TransitionEvent(transition=T(id=T.TRANSITION_CONFIGURE, label="configure"),
                          start_state=State(label="configuring"), goal_state=State(label=goal))
    event = StateTransition(action=node, msg=msg)
    assert handler.matches(event)
    context._push_locals()
    try:
        out = []
        for entity in handler.handle(event, context) or []:
            out += entity.visit(context) or []
        return out
    finally:
        context._pop_locals()


def _change_states(node, entities) -> list[int]:
    """The transitions the emitted ChangeState events ask of ``node`` (those its matcher accepts)."""
    from launch_ros.events.lifecycle import ChangeState
    return [e.event.transition_id for e in entities
            if isinstance(e.event, ChangeState) and e.event.lifecycle_node_matcher(node)]


def test_managed_activates_once_after_the_first_configure(launch_file, monkeypatch):
    from lifecycle_msgs.msg import Transition
    node, handler, context = _managed_bring_up(launch_file, monkeypatch)
    assert handler.handle_once
    assert _change_states(node, _configured(node, context, handler, "inactive")) == [Transition.TRANSITION_ACTIVATE]
    # handled once: an operator's later configure is not followed by an activate from the launch
    assert handler not in context._event_handlers


def test_managed_first_configure_failing_ends_the_launch(launch_file, monkeypatch):
    node, handler, context = _managed_bring_up(launch_file, monkeypatch)
    with pytest.raises(RuntimeError, match="configure failed"):
        _configured(node, context, handler, "unconfigured")
    assert handler not in context._event_handlers  # a later failed configure leaves the launch running


def test_managed_asks_nothing_while_shutting_down(launch_file, monkeypatch):
    """Ctrl-C during the bring-up: the configure that ends during the shutdown is not followed by an
    activate, and a ChangeState already emitted matches no node once the launch is shutting down."""
    from lifecycle_msgs.msg import Transition
    node, handler, context = _managed_bring_up(launch_file, monkeypatch)
    context._set_is_shutdown(True)
    assert _configured(node, context, handler, "inactive") == []
    node2, handler2, context2 = _managed_bring_up(launch_file, monkeypatch)
    (emit,) = _configured(node2, context2, handler2, "inactive")
    context2._set_is_shutdown(True)
    assert _change_states(node2, [emit]) == []
    assert Transition.TRANSITION_ACTIVATE == emit.event.transition_id


def test_managed_autostart_false_stays_inactive(launch_file, monkeypatch):
    node, handler, context = _managed_bring_up(launch_file, monkeypatch, autostart="false")
    assert _configured(node, context, handler, "inactive") == []


def test_change_state_call_failing_during_shutdown_is_quiet(launch_file, monkeypatch):
    """launch_ros's change_state call raises InvalidHandle when Ctrl-C destroys the launch's ROS node
    under it: quiet once the launch is shutting down, raised otherwise."""
    from lifecycle_msgs.srv import ChangeState
    node, _, context = _managed_bring_up(launch_file, monkeypatch)

    class DestroyedClient:
        srv_name = "/fornet_segmentation/change_state"

        def wait_for_service(self, timeout_sec=None):
            raise RuntimeError("cannot use Destroyable because destruction was requested")

    monkeypatch.setattr(node, "_LifecycleNode__rclpy_change_state_client", DestroyedClient(), raising=False)
    with pytest.raises(RuntimeError, match="Destroyable"):
        node._call_change_state(ChangeState.Request(), context)
    context._set_is_shutdown(True)
    node._call_change_state(ChangeState.Request(), context)  # no exception
