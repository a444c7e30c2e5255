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


def _lifecycle_node_class():
    from launch_ros.actions import LifecycleNode

    class ManagedBringUpNode(LifecycleNode):
        """launch_ros's LifecycleNode, whose change-state call may end quietly once the launch shuts down.

        launch_ros 0.28 calls ``<node>/change_state`` from a worker thread that waits for the service
        and the response; Ctrl-C shuts the launch's ROS node down under it, and the call then raises
        (InvalidHandle: "cannot use Destroyable because destruction was requested"), which ends
        ``ros2 launch`` with exit code 1 and a traceback. There is no public hook: this overrides the
        one method that makes the call, and lets a failure pass only while the launch is shutting down."""

        def _call_change_state(self, request, context):
            try:
                super()._call_change_state(request, context)
            except Exception:  # noqa: BLE001 - any failure of an abandoned call during shutdown
                if not context.is_shutdown:
                    raise

    return ManagedBringUpNode


def _managed_node(node_kw, actions, activate: bool):
    """managed:=true: the launch brings the node up as a lifecycle manager does (the node runs with
    autostart false), once: configure at start and, when that first configure reached inactive,
    activate (unless autostart:=false); a first configure that fails ends the launch with an error.
    Later transitions (an operator's own deactivate, cleanup, configure) are left alone."""
    from launch.events import matches_action
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    node = _lifecycle_node_class()(namespace="", **node_kw)

    def change(transition, context):
        # matched when launch_ros handles the event: no call starts once the launch is shutting down
        def matcher(action):
            return matches_action(node)(action) and not context.is_shutdown
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matcher, transition_id=transition))

    def after_configure(context):
        step = launch_logic.after_first_configure(context.locals.event.goal_state, context.is_shutdown, activate)
        if step == launch_logic.FAIL:
            raise RuntimeError(launch_logic.CONFIGURE_FAILED)
        return [change(Transition.TRANSITION_ACTIVATE, context)] if step == launch_logic.ACTIVATE else None

    actions.extend([
        node,
        RegisterEventHandler(OnStateTransition(target_lifecycle_node=node, start_state="configuring",
                                               entities=[OpaqueFunction(function=after_configure)],
                                               handle_once=True)),
        OpaqueFunction(function=lambda context: [change(Transition.TRANSITION_CONFIGURE, context)]),
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
        node = _managed_node(node_kw, actions, plan.activate)
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
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value="", description=description)
          for name, description in launch_logic.ARGUMENTS.items()),
        OpaqueFunction(function=_launch_setup, args=[share]),
    ])
