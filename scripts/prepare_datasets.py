#!/usr/bin/env python3
"""Turn clones of the public source repositories into the dataset folders the training recipes read.

    python scripts/prepare_datasets.py --out ~/fornet_data \
        --cityscapes-fine CLONE --cityscapes-lowres CLONE --idd-lite CLONE

Each CLONE is a git clone (work tree or bare) of the repository named in
``fornet_ros/training/sources.py`` (``SOURCES``), which must hold that commit. Writes:

- ``OUT/cityscapes_fine/``   Cityscapes layout: Aachen train (100), Frankfurt val (10, a hold-out)
- ``OUT/cityscapes_lowres/`` images/{train,val} JPEG + labels/{train,val} train-ID PNG, 256x512
                             (train 2,975; val 500 = Cityscapes' official val, a hold-out)
- ``OUT/idd_lite/``          images/{train,val} JPEG + labels/{train,val} level-1 PNG (1,403 / 204)
each with classes.yaml (folder datasets) and SOURCE.md (repository, commit, terms, counts). File
counts are checked against the sources. Omit a source's option to skip it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fornet_ros.training.sources import SOURCES, archive, git_dir_of, source_note, split_pix2pix  # noqa: E402


def prepare_cityscapes_fine(tmp: Path, out: Path) -> dict[str, int]:
    src, counts = tmp / "data/cityscapes", {}
    for split, city in (("train", "aachen"), ("val", "frankfurt")):
        for kind, pattern in (("leftImg8bit", "*_leftImg8bit.png"), ("gtFine", "*_gtFine_labelIds.png")):
            dst = out / kind / split / city
            dst.mkdir(parents=True, exist_ok=True)
            files = sorted((src / kind / split / city).glob(pattern))
            for f in files:
                shutil.copy2(f, dst / f.name)
            counts[f"{kind}/{split}/{city}"] = len(files)
    return counts


def prepare_pix2pix(tmp: Path, out: Path) -> dict[str, int]:
    counts = {}
    for split in ("train", "val"):
        files = sorted((tmp / "cityscapes" / split).glob("*.jpg"), key=lambda p: int(p.stem))
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for f in tqdm(files, desc=f"cityscapes_lowres {split}", dynamic_ncols=True):
            photo, label = split_pix2pix(cv2.imread(str(f), cv2.IMREAD_COLOR))
            name = f"{int(f.stem):04d}"
            cv2.imwrite(str(out / "images" / split / f"{name}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(str(out / "labels" / split / f"{name}.png"), label)
        counts[f"images/{split}"] = counts[f"labels/{split}"] = len(files)
    (out / "classes.yaml").write_text("label_space: cityscapes_trainids  # labels are train IDs 0..18, 255 ignore\n")
    return counts


def prepare_idd(tmp: Path, out: Path) -> dict[str, int]:
    counts = {}
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        images = sorted((tmp / "idd20k_lite/leftImg8bit" / split).rglob("*_image.jpg"))
        for f in images:
            name = f"{f.parent.name}_{f.name[:-len('_image.jpg')]}"
            label = tmp / "idd20k_lite/gtFine" / split / f.parent.name / f.name.replace("_image.jpg", "_label.png")
            shutil.copy2(f, out / "images" / split / f"{name}.jpg")
            shutil.copy2(label, out / "labels" / split / f"{name}.png")
        counts[f"images/{split}"] = counts[f"labels/{split}"] = len(images)
    (out / "classes.yaml").write_text("label_space: idd_lite  # IDD level-1 classes, mapped through sets\n")
    return counts


STEPS = {"cityscapes_fine": prepare_cityscapes_fine, "cityscapes_lowres": prepare_pix2pix, "idd_lite": prepare_idd}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder to write the datasets into")
    for name, src in SOURCES.items():
        p.add_argument(f"--{name.replace('_', '-')}", metavar="CLONE", help=f"a clone of github.com/{src.repo}")
    a = p.parse_args(argv)
    todo = {n: getattr(a, n) for n in SOURCES if getattr(a, n)}
    if not todo:
        p.error("name at least one source clone")
    for name, clone in todo.items():
        source, out = SOURCES[name], Path(a.out) / name
        with tempfile.TemporaryDirectory() as tmp:
            archive(git_dir_of(Path(clone)), source, Path(tmp))
            counts = STEPS[name](Path(tmp), out)
        (out / "SOURCE.md").write_text(source_note(source, counts))
        print(f"{name}: {counts} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
