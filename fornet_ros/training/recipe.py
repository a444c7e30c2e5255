"""Training recipes: one YAML file names the datasets (roots, splits, label mapping, sampling
weight, scale), the model and the schedule, so that one command reproduces a shipped model
(``fornet train --recipe recipes/<name>.yaml --out DIR``). ``recipes/`` holds the shipped ones.

A recipe's top-level keys are ``fornet train`` options (``lr``, ``iters``, ``crop``, ``variant``,
``init``, ...: dashes or underscores), plus ``datasets`` (a list) and ``val`` (one spec):

    datasets:
      - {type: cityscapes, root: ${FORNET_DATA}/cityscapes_fine, splits: [train], weight: 0.3, base_scale: 0.375}
      - {type: camvid, root: ${FORNET_DATA}/camvid, splits: [train, val], exclude_drives: [0006R0], weight: 0.2}
    val: {type: camvid, root: ${FORNET_DATA}/camvid, split: val, limit: 50}

``${VAR}`` in a root is an environment variable (``--data-dir`` sets ``FORNET_DATA``). Options given
on the command line (different from their defaults) win over the recipe's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import FornetError
from .datasets import DATASETS

SPEC_KEYS = {"name", "type", "root", "splits", "split", "weight", "scale", "base_scale", "drives", "exclude_drives",
             "cities", "limit"}


class RecipeError(FornetError):
    """A recipe file is missing, malformed or names unknown keys."""


@dataclass
class DatasetSpec:
    """One dataset of a training mix (or the validation set)."""
    type: str
    root: str
    splits: list[str] = field(default_factory=lambda: ["train"])
    name: str | None = None
    weight: float = 1.0
    scale: tuple[float, float] | None = None  # random scale range (default: the run's --scale)
    base_scale: float = 1.0  # resize before the random scale: brings every dataset to the model's pixel size
    drives: list[str] | None = None
    exclude_drives: list[str] | None = None
    cities: list[str] | None = None
    limit: int | None = None

    def __post_init__(self):
        self.name = self.name or Path(self.root).name
        if self.type not in DATASETS:
            raise RecipeError(f"dataset {self.name}: unknown type {self.type!r}; choose one of {sorted(DATASETS)}")
        if not self.weight > 0 or not self.base_scale > 0:
            raise RecipeError(f"dataset {self.name}: weight and base_scale must be > 0")

    def kwargs(self) -> dict:
        """Keyword arguments of the dataset class beyond (root, split)."""
        if self.type == "camvid":
            return {"drives": self.drives, "exclude_drives": self.exclude_drives}
        if self.type == "cityscapes":
            return {"cities": self.cities}
        return {}


def parse_spec(raw: dict, where: str) -> DatasetSpec:
    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: a dataset is a mapping (type, root, splits, ...), got {raw!r}")
    unknown = set(raw) - SPEC_KEYS
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(SPEC_KEYS)}")
    if "type" not in raw or "root" not in raw:
        raise RecipeError(f"{where}: needs 'type' and 'root'")
    raw = dict(raw)
    if "split" in raw:
        raw["splits"] = [raw.pop("split")]
    raw["root"] = os.path.expandvars(str(raw["root"]))
    if "$" in raw["root"]:
        raise RecipeError(f"{where}: root {raw['root']!r} names an unset environment variable (--data-dir sets FORNET_DATA)")
    if "scale" in raw:
        raw["scale"] = tuple(float(v) for v in raw["scale"])
    return DatasetSpec(**raw)


@dataclass
class Recipe:
    path: Path
    options: dict  # fornet train option (dest) -> value
    datasets: list[DatasetSpec]
    val: DatasetSpec | None
    text: str


def load_recipe(path, known_options: set[str]) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    text = path.read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from e
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of options")
    options = {k.replace("-", "_"): v for k, v in raw.items() if k not in ("datasets", "val")}
    unknown = set(options) - known_options
    if unknown:
        raise RecipeError(f"{path}: unknown option(s) {sorted(unknown)} (see fornet train --help)")
    specs = raw.get("datasets")
    if not isinstance(specs, list) or not specs:
        raise RecipeError(f"{path}: 'datasets' must be a non-empty list")
    datasets = [parse_spec(s, f"{path} datasets[{i}]") for i, s in enumerate(specs)]
    val = parse_spec(raw["val"], f"{path} val") if raw.get("val") else None
    return Recipe(path, options, datasets, val, text)


def specs_from_args(args) -> tuple[list[DatasetSpec], DatasetSpec]:
    """The one-dataset form of the command line (``--dataset --data-root --split ...``) as specs."""
    if not args.data_root:
        raise RecipeError("--data-root is required without --recipe")
    camvid = args.dataset == "camvid"
    train = DatasetSpec(args.dataset, args.data_root, list(args.split), drives=args.drives if camvid else None,
                        exclude_drives=args.exclude_drives if camvid else None)
    val = DatasetSpec(args.dataset, args.data_root, [args.val_split or args.split[0]],
                      drives=args.val_drives if camvid and args.val_drives else None, limit=args.val_limit)
    return [train], val


def build_spec(spec: DatasetSpec, transform=None, partial: bool = False, cache: bool = False):
    """The dataset a spec names (its splits joined: same class, same label mapping)."""
    from .datasets import build_dataset
    kw = {k: v for k, v in spec.kwargs().items() if v}
    ds = build_dataset(spec.type, spec.root, spec.splits[0], transform=transform, cache=cache, partial=partial, **kw)
    for split in spec.splits[1:]:
        ds.pairs += build_dataset(spec.type, spec.root, split, partial=partial, **kw).pairs
    return ds


def describe_spec(spec: DatasetSpec, ds) -> dict:
    """What the checkpoint's training record says about one dataset: where it came from (the
    SOURCE.md the preparation script wrote beside it), its label space, its size."""
    note = Path(spec.root) / "SOURCE.md"
    source = None
    if note.is_file():
        source = next((line.strip() for line in note.read_text().splitlines() if line.startswith("From ")), None)
    return {"name": spec.name, "type": spec.type, "splits": spec.splits, "files": len(ds),
            "label_space": ds.space.name if ds.space is not None else "custom",
            "weight": spec.weight, "base_scale": spec.base_scale, "scale": list(spec.scale) if spec.scale else None,
            "drives": spec.drives, "exclude_drives": spec.exclude_drives, "source": source}
