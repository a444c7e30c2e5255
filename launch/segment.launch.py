"""ros2 launch fornet_ros segment.launch.py [params_file:=...] [checkpoint:=...] [camera:=camera]
[image_topic:=/my_cam/image_raw] [camera_info_topic:=...] [use_sim_time:=true] [device:=auto]
[log_level:=info] [bag:=PATH] [bag_rate:=1.0] [fastdds_profile:=...] [autostart:=false] [managed:=true]

Every argument defaults to '' (= not given): only the arguments you give override params_file.
The launch ends when the node exits, and with an error (exit code 1) when the node or the bag
player fails. The argument logic lives in fornet_ros/node/launch_logic.py (tested without launch);
see docs/launch.md.
"""

import os
from typing import List

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, ExecuteProcess, LogInfo, OpaqueFunction,
                            RegisterEventHandler, SetEnvironmentVariable)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from fornet_ros.node import launch_logic


def _parameter(value):
    # launch_ros YAML-parses plain strings (a checkpoint named '1' would become an int): type them
    if isinstance(value, str):
        return ParameterValue(value, value_type=str)
    if isinstance(value, list):
        return ParameterValue(value, value_type=List[str])
    return value


def _on_exit(what, stops_launch):
    def handler(event, context):
        error = launch_logic.exit_error(what, event.returncode, context.is_shutdown)
        if error:
            # launch has no exit-code action: LaunchService.run() returns 1 when an exception
            # reaches it (it logs "Caught exception in launch ...: <error>" and shuts down)
            raise RuntimeError(error)
        if stops_launch and not context.is_shutdown:
            return [EmitEvent(event=Shutdown(reason=f"{what} exited"))]
        if not context.is_shutdown:
            return [LogInfo(msg=f"{what} finished; the node keeps running (Ctrl-C to stop)")]
        return None
    return handler


def _managed_node(node_kw, actions):
    """managed:=true: the launch brings the node up as a lifecycle manager does (the node runs with
    autostart false): configure at start, activate once configuring reached inactive; a configure
    that fails (back to unconfigured) ends the launch with an error."""
    from launch.events import matches_action
    from launch_ros.actions import LifecycleNode
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    node = LifecycleNode(namespace="", **node_kw)

    def change(transition):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition))

    def failed(context):
        raise RuntimeError("segmentation node: configure failed (its log says why); ending the launch")

    actions.extend([
        node,
        RegisterEventHandler(OnStateTransition(target_lifecycle_node=node, start_state="configuring",
                                               goal_state="inactive", entities=[change(Transition.TRANSITION_ACTIVATE)])),
        RegisterEventHandler(OnStateTransition(target_lifecycle_node=node, start_state="configuring",
                                               goal_state="unconfigured", entities=[OpaqueFunction(function=failed)])),
        change(Transition.TRANSITION_CONFIGURE),
    ])
    return node


def _launch_setup(context, share):
    values = {name: LaunchConfiguration(name).perform(context) for name in launch_logic.ARGUMENTS}
    plan = launch_logic.make_plan(values, context.environment,
                                  default_params_file=os.path.join(share, "config", "fornet.yaml"),
                                  default_profile=os.path.join(share, "config", "fastdds_large_images.xml"))
    actions = []
    if plan.fastdds_profile is not None:
        actions.append(SetEnvironmentVariable(launch_logic.FASTDDS_ENV, plan.fastdds_profile))
    parameters = [plan.params_file]
    if plan.overrides:
        parameters.append({k: _parameter(v) for k, v in plan.overrides.items()})
    node_kw = dict(package="fornet_ros", executable="segmentation_node", name=launch_logic.NODE_NAME,
                   output="screen", parameters=parameters, remappings=plan.remappings,
                   arguments=["--ros-args", *plan.ros_args] if plan.ros_args else None)
    if plan.managed:
        node = _managed_node(node_kw, actions)
    else:
        node = Node(**node_kw)
        actions.append(node)
    actions += [RegisterEventHandler(OnProcessExit(
        target_action=node, on_exit=_on_exit("segmentation node", stops_launch=True)))]
    if plan.bag_cmd:
        bag = ExecuteProcess(cmd=plan.bag_cmd, name="bag_play", output="screen")
        actions += [bag, RegisterEventHandler(OnProcessExit(
            target_action=bag, on_exit=_on_exit("ros2 bag play", stops_launch=False)))]
    return actions


def generate_launch_description():
    share = get_package_share_directory("fornet_ros")
    d = launch_logic.ARGUMENTS
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value="", description=d["params_file"]),
        DeclareLaunchArgument("checkpoint", default_value="", description=d["checkpoint"]),
        DeclareLaunchArgument("camera", default_value="", description=d["camera"]),
        DeclareLaunchArgument("image_topic", default_value="", description=d["image_topic"]),
        DeclareLaunchArgument("camera_info_topic", default_value="", description=d["camera_info_topic"]),
        DeclareLaunchArgument("use_sim_time", default_value="", description=d["use_sim_time"]),
        DeclareLaunchArgument("device", default_value="", description=d["device"]),
        DeclareLaunchArgument("log_level", default_value="", description=d["log_level"]),
        DeclareLaunchArgument("bag", default_value="", description=d["bag"]),
        DeclareLaunchArgument("bag_rate", default_value="", description=d["bag_rate"]),
        DeclareLaunchArgument("fastdds_profile", default_value="", description=d["fastdds_profile"]),
        DeclareLaunchArgument("autostart", default_value="", description=d["autostart"]),
        DeclareLaunchArgument("managed", default_value="", description=d["managed"]),
        OpaqueFunction(function=_launch_setup, args=[share]),
    ])
