"""ros2 launch fornet_ros segment.launch.py [params_file:=...] [checkpoint:=...] [camera:=camera]
[image_topic:=/my_cam/image_raw] [use_sim_time:=false] [device:=auto] [log_level:=info] [bag:=PATH]"""

import os
from typing import List

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory("fornet_ros")
    args = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "fornet.yaml"),
                              description="node parameters (YAML)"),
        DeclareLaunchArgument("checkpoint", default_value="", description="FoR-Net checkpoint; empty = packaged model"),
        DeclareLaunchArgument("camera", default_value="camera", description="camera namespace"),
        DeclareLaunchArgument("image_topic", default_value="", description="remap <camera>/image_raw to this topic"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="true when replaying a bag with --clock"),
        DeclareLaunchArgument("device", default_value="auto", description="auto, cpu, cuda, cuda:N"),
        DeclareLaunchArgument("log_level", default_value="info"),
        DeclareLaunchArgument("bag", default_value="", description="rosbag2 to play beside the node (ros2 bag play --clock)"),
        DeclareLaunchArgument("fastdds_profile", default_value=os.path.join(share, "config", "fastdds_large_images.xml"),
                              description="Fast DDS profile for large images"),
    ]
    camera = LaunchConfiguration("camera")
    image_topic = LaunchConfiguration("image_topic")
    node = Node(
        package="fornet_ros",
        executable="segmentation_node",
        name="fornet_segmentation",
        output="screen",
        parameters=[LaunchConfiguration("params_file"), {
            "checkpoint": ParameterValue(LaunchConfiguration("checkpoint"), value_type=str),
            "device": ParameterValue(LaunchConfiguration("device"), value_type=str),
            "cameras": ParameterValue(["[", camera, "]"], value_type=List[str]),
            "use_sim_time": PythonExpression(["'", LaunchConfiguration("use_sim_time"), "'.lower() == 'true'"]),
        }],
        remappings=[([camera, "/image_raw"], PythonExpression(
            ["'", image_topic, "' or '", camera, "/image_raw'"]))],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    )
    bag = ExecuteProcess(cmd=["ros2", "bag", "play", "--clock", LaunchConfiguration("bag")], output="screen",
                         condition=IfCondition(PythonExpression(["'", LaunchConfiguration("bag"), "' != ''"])))
    return LaunchDescription(args + [SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                                                            LaunchConfiguration("fastdds_profile")), node, bag])
