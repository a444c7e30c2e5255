"""The colcon install has the ROS layout that `ros2 run` / `ros2 launch` rely on."""

import ast
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_share_directory_holds_launch_and_config():
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix, get_package_share_directory
    try:
        share = Path(get_package_share_directory("fornet_ros"))
    except PackageNotFoundError:
        pytest.skip("fornet_ros not in AMENT_PREFIX_PATH: run through scripts/test.sh (colcon)")
    for f in ("launch/segment.launch.py", "config/fornet.yaml", "config/fastdds_large_images.xml",
              "config/semantic_costmap.yaml", "config/nav2_semantic_costmap.yaml", "package.xml"):
        assert (share / f).is_file(), f
    exe = Path(get_package_prefix("fornet_ros")) / "lib" / "fornet_ros" / "segmentation_node"
    assert exe.is_file() and os.access(exe, os.X_OK)


def test_params_file_declares_only_known_parameters():
    from fornet_ros.node.params import NodeParams
    from dataclasses import fields
    params = yaml.safe_load((ROOT / "config" / "fornet.yaml").read_text())["/**"]["ros__parameters"]
    known = {f.name for f in fields(NodeParams)}
    unknown = {k for k in params if k not in known and k.split(".")[0] not in ("camera_pose", "self_mask_rows",
                                                                              "self_mask_image")}
    assert not unknown and known <= set(params)


def test_launch_file_is_standard_python_launch():
    """The entry point ``ros2 launch`` calls. Which arguments it declares is checked by running it
    (test_launch.py: declared == launch_logic.ARGUMENTS), not by searching its text."""
    tree = ast.parse((ROOT / "launch" / "segment.launch.py").read_text())
    funcs = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs
