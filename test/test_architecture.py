"""The import rule: the core never imports ROS; only fornet_ros.ros does."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "fornet_ros"
ROS_MODULES = ("rclpy", "rosidl", "ament_index_python", "cv_bridge", "tf2_ros", "launch", "rosbags")


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_core_never_imports_ros():
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] in ("ros",) or rel.name == "bags.py":
            continue
        for mod in _imports(path):
            top = mod.split(".")[0]
            if top in ROS_MODULES or top.endswith("_msgs"):
                offenders.append(f"{rel}: {mod}")
    assert not offenders, offenders
