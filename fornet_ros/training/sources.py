"""Public copies of labelled driving data turned into dataset folders (``scripts/prepare_datasets.py``).

Three sources, each a public git repository at a fixed commit (``SOURCES``; read with ``git archive``,
nothing is downloaded at run time and no image enters this repository):

- **Cityscapes fine** (Aachen train, Frankfurt val) in the official layout: kept as is, read by
  :class:`~fornet_ros.training.datasets.Cityscapes`.
- **Cityscapes at low resolution** (pix2pix's paired set: 2,975 train + the 500-frame official val):
  one 512x256 JPEG per pair, photo left and *colour* label right, both squashed from 2:1 to square,
  the label JPEG-compressed. :func:`split_pix2pix` snaps each label pixel to the nearest Cityscapes
  colour (void colours included, so black borders stay ignore), ignores pixels far from every colour
  or alone among their neighbours (JPEG ringing), and un-squashes both halves to 2:1.
- **IDD-Lite**: 320x227 JPEG + ``*_label.png`` with IDD's 7 level-1 classes, kept as they are; the
  classes map onto the 19 through sets (:data:`fornet_ros.classes.IDD_LITE`).

Each prepared folder gets a ``SOURCE.md`` (repository, commit, terms, file counts).
"""

from __future__ import annotations

import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..classes import CITYSCAPES_PALETTE, IGNORE_INDEX
from ..errors import FornetError


class SourceError(FornetError):
    """A source repository is missing, at another commit, or holds other file counts than expected."""


@dataclass(frozen=True)
class Source:
    name: str
    repo: str  # github owner/name
    commit: str
    paths: dict[str, int]  # path inside the repository -> expected number of files under it
    terms: str


CITYSCAPES_TERMS = ("Cityscapes terms of use: non-commercial research and teaching only; the images may not be "
                    "redistributed (https://www.cityscapes-dataset.com/license/)")
SOURCES = {
    "cityscapes_fine": Source(
        "cityscapes_fine", "tunghia1890/HRNet-Semantic-Segmentation", "05af206be1aff6717a2eec1339c473250f7cc63d",
        {"data/cityscapes/leftImg8bit/train/aachen": 100, "data/cityscapes/gtFine/train/aachen": 500,
         "data/cityscapes/leftImg8bit/val/frankfurt": 10, "data/cityscapes/gtFine/val/frankfurt": 40},
        CITYSCAPES_TERMS),
    "cityscapes_lowres": Source(
        "cityscapes_lowres", "prakashpandey9/BicycleGAN", "69cda8bea4c469bb77bbb4d4920b28a2577315c6",
        {"cityscapes/train": 2975, "cityscapes/val": 500}, CITYSCAPES_TERMS),
    "idd_lite": Source(
        "idd_lite", "mohanrajmit/IDD", "174b563",
        {"idd20k_lite/leftImg8bit/train": 1403, "idd20k_lite/gtFine/train": 1403,
         "idd20k_lite/leftImg8bit/val": 204, "idd20k_lite/gtFine/val": 204},
        "IDD terms of use: non-commercial research only (https://idd.insaan.iiit.ac.in/)"),
}

# Cityscapes colours that are not one of the 19 classes (cityscapesScripts labels.py): snapping to
# them keeps void pixels ignored instead of pulling them to the nearest class colour.
VOID_COLOURS = ((0, 0, 0), (111, 74, 0), (81, 0, 81), (250, 170, 160), (230, 150, 140), (180, 165, 180),
                (150, 100, 100), (150, 120, 90), (0, 0, 90), (0, 0, 110))
SNAP_MAX_DISTANCE = 30.0  # RGB units; farther pixels are JPEG blends of two colours: ignored


def snap_colour_label(rgb: np.ndarray, max_distance: float = SNAP_MAX_DISTANCE) -> np.ndarray:
    """RGB colour label (HxWx3 uint8, possibly JPEG-noisy) -> train IDs (HxW uint8, 255 ignore)."""
    colours = np.asarray(CITYSCAPES_PALETTE + VOID_COLOURS, np.float32)
    ids = np.array(list(range(len(CITYSCAPES_PALETTE))) + [IGNORE_INDEX] * len(VOID_COLOURS), np.uint8)
    d = np.linalg.norm(rgb.astype(np.float32)[:, :, None, :] - colours[None, None], axis=-1)
    nearest = d.argmin(-1)
    label = ids[nearest]
    label[np.take_along_axis(d, nearest[..., None], -1)[..., 0] > max_distance] = IGNORE_INDEX
    # a pixel that no 4-neighbour shares is ringing, not a class: ignore it
    p = np.pad(label, 1, mode="edge")
    same = sum((p[1 + dy:p.shape[0] - 1 + dy, 1 + dx:p.shape[1] - 1 + dx] == label).astype(np.uint8)
               for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)))
    label[same == 0] = IGNORE_INDEX
    return label


def split_pix2pix(pair_bgr: np.ndarray, aspect: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """One pix2pix pair (H x 2H BGR: photo left, colour label right, both squashed to square) ->
    (photo BGR, train-ID label), both un-squashed to width ``aspect`` x height."""
    h, w = pair_bgr.shape[:2]
    if w != 2 * h:
        raise SourceError(f"a pix2pix pair is twice as wide as high, got {w}x{h}")
    photo, colour = pair_bgr[:, :h], pair_bgr[:, h:]
    label = snap_colour_label(cv2.cvtColor(colour, cv2.COLOR_BGR2RGB))
    size = (int(round(h * aspect)), h)
    return (cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC),
            cv2.resize(label, size, interpolation=cv2.INTER_NEAREST))


def archive(git_dir: Path, source: Source, dest: Path) -> None:
    """Extract ``source.paths`` at ``source.commit`` from the clone ``git_dir`` into ``dest``; check
    the file counts."""
    cmd = ["git", f"--git-dir={git_dir}", "archive", "--format=tar", source.commit, *source.paths]
    # streamed: the tar is read as git writes it (the Cityscapes clone's is ~260 MB; nothing buffered whole)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        read_error = None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                tar.extractall(dest, filter="data")
        except tarfile.ReadError as e:  # no tar from git: its exit status and message say why (below)
            read_error = e
        proc.stdout.close()
        err = proc.stderr.read()
        if proc.wait() != 0:
            raise SourceError(f"{source.name}: git archive failed in {git_dir} (a clone of github.com/{source.repo} "
                              f"at {source.commit}?): {err.decode().strip().splitlines()[-1:]}")
        if read_error is not None:
            raise SourceError(f"{source.name}: git archive wrote an unreadable tar: {read_error}")
    for path, expected in source.paths.items():
        n = sum(1 for f in (dest / path).rglob("*") if f.is_file())
        if n != expected:
            raise SourceError(f"{source.name}: {path} holds {n} files, expected {expected}")


def git_dir_of(repo: Path) -> Path:
    """A clone's git directory (a work tree's ``.git`` or a bare repository)."""
    repo = Path(repo)
    for d in (repo / ".git", repo):
        if (d / "HEAD").is_file() and (d / "objects").is_dir():
            return d
    raise SourceError(f"{repo} is not a git clone")


def source_note(source: Source, counts: dict[str, int], extra: str = "") -> str:
    lines = [f"# {source.name}", "", f"From github.com/{source.repo} at commit {source.commit} "
             f"(prepared by scripts/prepare_datasets.py). {extra}".strip(), "", f"Terms: {source.terms}.", "",
             "| folder | files |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in counts.items()]
    return "\n".join(lines) + "\n"
