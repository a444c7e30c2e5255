"""The import rules: the core never imports ROS; only fornet_ros.ros does (relative imports resolved)."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "fornet_ros"
ROS_MODULES = ("rclpy", "rosidl", "ament_index_python", "cv_bridge", "tf2_ros", "launch", "launch_ros")
# The CLI dispatches `fornet demo | bench-node | bag play` to fornet_ros.ros tools, inside the command functions.
CLI_MODULES = ("cli.py",)


def imports(source: str, rel: Path):
    """(absolute module name, top level?) of every import in a file at ``rel`` inside fornet_ros/."""
    tree = ast.parse(source)
    top = {id(n) for n in tree.body}
    package = ["fornet_ros", *rel.parent.parts]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((a.name, id(node) in top) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            if node.module:
                yield (f"{base}.{node.module}" if base else node.module), id(node) in top
            else:  # from . import x: x is a module (or a name) of base
                yield from ((f"{base}.{a.name}", id(node) in top) for a in node.names)


def violations(source: str, rel: Path) -> list[str]:
    if rel.parts[0] == "ros":
        return []
    out = []
    for mod, at_top in imports(source, rel):
        top = mod.split(".")[0]
        if top in ROS_MODULES or top.endswith("_msgs"):
            out.append(f"{rel}: {mod}")
        if top == "rosbags" and rel.name != "bags.py":
            out.append(f"{rel}: {mod} (only bags.py reads bags)")
        if (mod == "fornet_ros.ros" or mod.startswith("fornet_ros.ros.")) and (rel.name not in CLI_MODULES or at_top):
            out.append(f"{rel}: {mod}")
    return out


def test_relative_imports_are_resolved():
    src = "from .ros.node import main\nfrom ..images import to_rgb\nfrom . import bags\nimport rclpy\n"
    assert list(imports(src, Path("ros/node.py"))) == [
        ("fornet_ros.ros.ros.node", True), ("fornet_ros.images", True), ("fornet_ros.ros.bags", True), ("rclpy", True)]
    assert list(imports(src, Path("cli.py")))[:1] == [("fornet_ros.ros.node", True)]
    assert list(imports("def f():\n    from .ros.demo import run_demo\n", Path("cli.py"))) == [
        ("fornet_ros.ros.demo", False)]


def test_rules_catch_violations():
    src = "from .ros.conversions import fill_image\nfrom rosbags.rosbag2 import Reader\nfrom sensor_msgs.msg import Image\n"
    assert violations(src, Path("geometry.py")) == ["geometry.py: fornet_ros.ros.conversions",
                                                    "geometry.py: rosbags.rosbag2 (only bags.py reads bags)",
                                                    "geometry.py: sensor_msgs.msg"]
    assert violations("from . import ros\n", Path("bags.py")) == ["bags.py: fornet_ros.ros"]
    assert violations("from .ros.demo import run_demo\n", Path("cli.py")) == ["cli.py: fornet_ros.ros.demo"]
    assert violations("def f():\n    from .ros.demo import run_demo\n", Path("cli.py")) == []
    assert violations("import rclpy\n", Path("ros/node.py")) == []


def test_core_never_imports_ros():
    offenders = [v for path in sorted(PKG.rglob("*.py")) for v in violations(path.read_text(), path.relative_to(PKG))]
    assert not offenders, offenders
