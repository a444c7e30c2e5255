"""Old module paths of the flat layout (0.1.0), kept importable for one release.

The modules moved into concept folders (docs/architecture.md); ``import fornet_ros.geometry`` or
``from fornet_ros.bags import iter_frames`` still works and gives the module at its new path (the same
module object, so monkeypatching either name patches both), with a DeprecationWarning naming the new
path. One table instead of 30 shim files at the package root: the root stays the map of the package.
Remove after the next release. ``python -m`` needs the new path (``python -m fornet_ros.training.train``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# old module -> new module (fornet_ros.inference and fornet_ros.data are packages now and re-export
# their old names themselves)
MOVED = {
    "fornet_ros.checkpoint": "fornet_ros.inference.checkpoint",
    "fornet_ros.cuda_graphs": "fornet_ros.inference.cuda_graphs",
    "fornet_ros.device_ops": "fornet_ros.inference.device_ops",
    "fornet_ros.export": "fornet_ros.inference.export",
    "fornet_ros.model_description": "fornet_ros.inference.model_description",
    "fornet_ros.runtime": "fornet_ros.inference.runtime",
    "fornet_ros.train": "fornet_ros.training.train",
    "fornet_ros.losses": "fornet_ros.training.losses",
    "fornet_ros.evaluation": "fornet_ros.training.evaluation",
    "fornet_ros.metrics": "fornet_ros.training.metrics",
    "fornet_ros.data.datasets": "fornet_ros.training.datasets",
    "fornet_ros.data.transforms": "fornet_ros.training.transforms",
    "fornet_ros.geometry": "fornet_ros.mapping",
    "fornet_ros.points": "fornet_ros.mapping.points",
    "fornet_ros.costmap_score": "fornet_ros.mapping.costmap_score",
    "fornet_ros.frames": "fornet_ros.node.frames",
    "fornet_ros.pipeline": "fornet_ros.node.pipeline",
    "fornet_ros.diagnostics": "fornet_ros.node.diagnostics",
    "fornet_ros.k_controller": "fornet_ros.node.k_controller",
    "fornet_ros.node_config": "fornet_ros.node.params",
    "fornet_ros.images": "fornet_ros.node.images",
    "fornet_ros.launch_logic": "fornet_ros.node.launch_logic",
    "fornet_ros.predict": "fornet_ros.tools.predict",
    "fornet_ros.model_info": "fornet_ros.tools.model_info",
    "fornet_ros.bench": "fornet_ros.tools.bench",
    "fornet_ros.bags": "fornet_ros.tools.bags",
    "fornet_ros.clip": "fornet_ros.tools.clip",
    "fornet_ros.synthetic": "fornet_ros.tools.synthetic",
    "fornet_ros.demo_report": "fornet_ros.tools.demo_report",
    "fornet_ros.visuals": "fornet_ros.tools.visuals",
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old path to the module at its new path (the import system then binds whatever
    :meth:`exec_module` left in ``sys.modules`` under the old name)."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        return None  # a placeholder; exec_module swaps in the real module

    def exec_module(self, module):
        name = module.__name__
        warnings.warn(f"{name} moved to {MOVED[name]}; the old path goes after the next release",
                      DeprecationWarning, stacklevel=2)
        sys.modules[name] = importlib.import_module(MOVED[name])


def install() -> None:
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())  # ahead of path finders: an old path must never find a stale file
