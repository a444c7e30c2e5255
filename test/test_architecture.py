"""The import rules: the core never imports ROS; only fornet_ros.ros does (relative imports resolved)."""

import ast
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "fornet_ros"
ROS_MODULES = ("rclpy", "rosidl", "ament_index_python", "cv_bridge", "tf2_ros", "launch", "launch_ros")
# The command layer (cli.py and commands/) runs `fornet demo | bench-node | bag play` through fornet_ros.ros,
# imported inside the command functions only: the ROS-free commands never load rclpy.
CLI_MODULES = ("cli.py",)


def lazy_ros_allowed(rel: Path) -> bool:
    return (len(rel.parts) == 1 and rel.name in CLI_MODULES) or rel.parts[0] == "commands"


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
        if (mod == "fornet_ros.ros" or mod.startswith("fornet_ros.ros.")) and (not lazy_ros_allowed(rel) or at_top):
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
    assert violations("from ..ros.demo import run_demo\n", Path("commands/demo.py")) == [
        "commands/demo.py: fornet_ros.ros.demo"]
    assert violations("def run(a):\n    from ..ros.demo import run_demo\n", Path("commands/demo.py")) == []
    assert violations("def f():\n    from ..ros.demo import run_demo\n", Path("tools/clip.py")) == [
        "tools/clip.py: fornet_ros.ros.demo"]
    assert violations("import rclpy\n", Path("ros/node.py")) == []


def test_core_never_imports_ros():
    offenders = [v for path in sorted(PKG.rglob("*.py")) for v in violations(path.read_text(), path.relative_to(PKG))]
    assert not offenders, offenders


# -- the folders are layers: imports only run down ---------------------------------------------------
# folder -> the package folders it may import (besides the foundation at the root). mapping/ is the numpy
# sibling of model/ at the bottom: training scores costmaps with it, the node and tools project with it.
LAYERS = {
    "model": set(),
    "mapping": set(),
    "inference": {"model"},
    "training": {"model", "inference", "mapping"},
    "node": {"model", "inference", "mapping"},
    "tools": {"model", "inference", "training", "mapping", "node"},
    "ros": {"model", "inference", "training", "mapping", "node", "tools"},
    "commands": {"model", "inference", "training", "mapping", "node", "tools", "ros"},  # ros: inside run() only
    "data": set(),  # package data (the demo clip), no code
}
FOUNDATION = ("errors", "classes", "config", "validation")  # root modules everything may import; they
# import only each other (validation: the argument checks the CLI and the library share, issue #21)
NO_TORCH = ("mapping", "node")  # load without torch (node/params.py reaches the model inside build_segmenter only)
ROOT_FILES = {"__init__.py", "cli.py", *(f"{m}.py" for m in FOUNDATION)}


def layer_of(mod: str) -> str | None:
    """The folder (or foundation/root module) a fornet_ros module belongs to; None outside the package."""
    parts = mod.split(".")
    if parts[0] != "fornet_ros":
        return None
    return parts[1] if len(parts) > 1 else "fornet_ros"


def layer_violations(source: str, rel: Path) -> list[str]:
    here = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    if here == "cli":
        return []  # the CLI dispatches to every folder
    allowed = set(FOUNDATION) | ({here} | LAYERS[here] if here in LAYERS else set())
    out = []
    for mod, at_top in imports(source, rel):
        top = mod.split(".")[0]
        if here in NO_TORCH and at_top and top in ("torch", "torchvision"):
            out.append(f"{rel}: {mod} (no torch in {here}/)")
        there = layer_of(mod)
        if there is not None and there not in allowed:
            out.append(f"{rel}: {mod} ({here} may import {sorted(allowed)})")
    return out


def test_layer_rules_catch_violations():
    assert layer_violations("from ..inference import Segmenter\n", Path("model/fornet.py")) == [
        "model/fornet.py: fornet_ros.inference (model may import ['classes', 'config', 'errors', 'model', 'validation'])"]
    assert layer_violations("import torch\nfrom ..errors import FornetError\n", Path("mapping/camera.py")) == [
        "mapping/camera.py: torch (no torch in mapping/)"]
    assert layer_violations("def f():\n    import torch\n", Path("node/params.py")) == []  # inside a function: allowed
    assert layer_violations("def f():\n    from ..tools.synthetic import make_scene\n", Path("node/params.py")) == [
        "node/params.py: fornet_ros.tools.synthetic (node may import ['classes', 'config', 'errors', 'inference', "
        "'mapping', 'model', 'node', 'validation'])"]
    assert layer_violations("from ..training.train import main\n", Path("inference/export.py"))  # up: refused
    assert layer_violations("from ..inference import Segmenter\nfrom ..mapping import Pose\n",
                            Path("training/evaluation.py")) == []
    assert layer_violations("from .model import build_model\n", Path("errors.py"))  # the foundation imports nothing above
    assert layer_violations("def f():\n    from .ros.demo import run_demo\n", Path("cli.py")) == []


def test_layers_only_run_down():
    """The folder graph has no cycle (a topological order exists), so every import runs down."""
    order, todo = [], dict(LAYERS)
    while todo:
        ready = [f for f, deps in todo.items() if deps <= set(order)]
        assert ready, f"cycle among {sorted(todo)}"
        order += sorted(ready)
        for f in ready:
            del todo[f]
    assert order.index("model") < order.index("inference") < order.index("training") < order.index("tools") \
        < order.index("ros") < order.index("commands")


def test_every_module_keeps_to_its_layer():
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == set(LAYERS), folders  # a new folder needs its row in LAYERS (and in docs/architecture.md)
    assert {p.name for p in PKG.glob("*.py")} == ROOT_FILES  # the root is the map, not a heap of modules
    offenders = [v for path in sorted(PKG.rglob("*.py"))
                 for v in layer_violations(path.read_text(), path.relative_to(PKG))]
    assert not offenders, offenders


def test_import_leaves_the_import_system_alone_and_old_paths_are_gone():
    """The flat paths of 0.1.0 had their release: ``import fornet_ros`` installs no finder, and the old
    names are plain missing modules. (Checked in a fresh interpreter: this one has imported the tests'.)"""
    import subprocess
    code = ("import sys, importlib\nbefore = list(sys.meta_path)\nimport fornet_ros, fornet_ros.data\n"
            "assert sys.meta_path == before, sys.meta_path\n"
            "assert not [m for m in sys.modules if m.startswith('fornet_ros.training')], 'data imports training'\n"
            "for old in ('fornet_ros.geometry', 'fornet_ros.bags', 'fornet_ros.data.datasets'):\n"
            "    try:\n        importlib.import_module(old)\n    except ModuleNotFoundError:\n        continue\n"
            "    raise AssertionError(old)\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
    from fornet_ros.inference import OUTPUTS, Segmentation, Segmenter, resolve_device  # noqa: F401 - its own names


def test_mapping_and_node_load_without_torch():
    """What the NO_TORCH rule is for, checked in a fresh interpreter: the map and the node's core import
    without pulling torch in (transitively too)."""
    import subprocess
    mods = ["fornet_ros.mapping", *(f"fornet_ros.node.{p.stem}" for p in sorted((PKG / "node").glob("[!_]*.py")))]
    code = f"import sys\nfor m in {mods!r}: __import__(m)\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_every_cli_command_names_functions_that_exist():
    """The CLI's table names each command's functions; resolving every entry here makes a rename fail
    the tests (the CLI itself imports a command's module only when it runs)."""
    import pytest

    from fornet_ros.cli import COMMANDS, Command
    for name, command in COMMANDS.items():
        add, run = command.resolve()
        assert callable(add) and callable(run), name
        assert [f"{f.__module__}:{f.__name__}" for f in (add, run)] == [command.add, command.run], name
    with pytest.raises(AttributeError):
        Command("fornet_ros.commands.predict:add_argumentz", "fornet_ros.commands.predict:run", "").resolve()
