"""Procedural Cityscapes-style street scenes with exact train-ID labels (numpy + opencv).

Content the project owns, for tests, the demo and the default bag: sky, buildings, road with a
vanishing point, sidewalks, poles, traffic signs, cars and people, with per-class texture so that
a network can learn them. Deterministic for a given seed.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE

C = {name: i for i, name in enumerate(CITYSCAPES_CLASSES)}


def _fill(img, lab, mask_fn, cls, rng, noise=12.0):
    """Draw via ``mask_fn(canvas)`` into label and image (class colour + noise texture)."""
    m = np.zeros(lab.shape, np.uint8)
    mask_fn(m)
    sel = m > 0
    base = np.asarray(CITYSCAPES_PALETTE[cls], np.float32) * rng.uniform(0.7, 1.1)
    img[sel] = np.clip(base + rng.normal(0, noise, (int(sel.sum()), 3)), 0, 255)
    lab[sel] = cls


def make_scene(height: int = 256, width: int = 512, seed: int = 0, horizon: float = 0.45):
    """Returns (rgb uint8 HxWx3, labels uint8 HxW train IDs). ``horizon``: row fraction of the
    vanishing point (everything below it on the road plane is road / sidewalk)."""
    rng = np.random.default_rng(seed)
    H, W = height, width
    img = np.zeros((H, W, 3), np.float32)
    lab = np.full((H, W), C["sky"], np.uint8)
    hz = int(H * horizon)
    _fill(img, lab, lambda m: cv2.rectangle(m, (0, 0), (W, hz), 1, -1), C["sky"], rng, 6)
    # buildings along the horizon
    x = 0
    while x < W:
        bw = int(rng.uniform(0.1, 0.25) * W)
        top = int(rng.uniform(0.05, 0.35) * H)
        _fill(img, lab, lambda m, x=x, bw=bw, top=top: cv2.rectangle(m, (x, top), (x + bw, hz), 1, -1), C["building"], rng, 18)
        x += bw
    # vegetation strip
    _fill(img, lab, lambda m: cv2.rectangle(m, (0, hz - int(0.05 * H)), (int(0.2 * W), hz), 1, -1), C["vegetation"], rng, 25)
    # ground: sidewalk everywhere below the horizon, road as a trapezoid to the vanishing point
    _fill(img, lab, lambda m: cv2.rectangle(m, (0, hz), (W, H), 1, -1), C["sidewalk"], rng, 10)
    vx = int(W * rng.uniform(0.4, 0.6))
    road = np.array([[vx - 2, hz], [vx + 2, hz], [int(W * 0.95), H], [int(W * 0.05), H]], np.int32)
    _fill(img, lab, lambda m: cv2.fillPoly(m, [road], 1), C["road"], rng, 8)
    # poles with signs (thin structures)
    for _ in range(rng.integers(2, 5)):
        px = int(rng.uniform(0.02, 0.98) * W)
        bottom = int(rng.uniform(hz + 0.1 * H, H - 0.05 * H))
        top = int(rng.uniform(0.1, 0.3) * H)
        pw = max(1, int(W * 0.006))
        _fill(img, lab, lambda m: cv2.rectangle(m, (px, top), (px + pw, bottom), 1, -1), C["pole"], rng, 8)
        s = max(3, int(W * 0.02))
        _fill(img, lab, lambda m: cv2.rectangle(m, (px - s // 2, top), (px + s // 2, top + s), 1, -1), C["traffic sign"], rng, 8)
    # cars and people standing on the ground
    for _ in range(rng.integers(1, 4)):
        by = int(rng.uniform(hz + 0.1 * H, H - 0.02 * H))
        scale = (by - hz) / max(1, H - hz)
        cw, ch = int(W * 0.25 * scale) + 4, int(H * 0.18 * scale) + 3
        cx = int(rng.uniform(0.05, 0.95) * W)
        _fill(img, lab, lambda m: cv2.rectangle(m, (cx - cw // 2, by - ch), (cx + cw // 2, by), 1, -1), C["car"], rng, 10)
    for _ in range(rng.integers(1, 4)):
        by = int(rng.uniform(hz + 0.1 * H, H - 0.02 * H))
        scale = (by - hz) / max(1, H - hz)
        pw, ph = max(2, int(W * 0.02 * scale) + 2), int(H * 0.25 * scale) + 4
        px = int(rng.uniform(0.05, 0.95) * W)
        _fill(img, lab, lambda m: cv2.ellipse(m, (px, by - ph // 2), (pw, ph // 2), 0, 0, 360, 1, -1), C["person"], rng, 10)
    img = cv2.GaussianBlur(img, (3, 3), 0)
    return np.clip(img, 0, 255).astype(np.uint8), lab


def write_camvid_like(root, n: int = 6, size=(96, 128), splits=("train", "val"), drives=("0001TP", "0006R0")):
    """Write a tiny dataset in the CamVid SegNet layout (labels as CamVid ids 0..11)."""
    from pathlib import Path
    from ..classes import CAMVID_TO_TRAINID
    inv = np.full(256, 11, np.uint8)
    for cam, tid in CAMVID_TO_TRAINID.items():
        if tid != 255:
            inv[tid] = cam
    root = Path(root)
    k = 0
    for split in splits:
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, lab = make_scene(*size, seed=k)
            name = f"{drives[i % len(drives)]}_{k:06d}.png"
            cv2.imwrite(str(root / split / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(root / f"{split}annot" / name), inv[lab])
            k += 1
    return root


def write_cityscapes_like(root, n: int = 4, size=(256, 512), split: str = "val", city: str = "synthtown",
                          seed: int = 0) -> dict:
    """Write procedural frames in the official Cityscapes layout: leftImg8bit/<split>/<city>/
    *_leftImg8bit.png, gtFine/.../*_gtFine_labelIds.png and camera/.../*_camera.json, with a camera
    whose horizon matches the scenes' (f = W px, level roll, pitch putting the horizon at 0.45 H)."""
    import json
    from pathlib import Path
    from ..classes import CITYSCAPES_LABELID_TO_TRAINID
    root = Path(root)
    H, W = size
    to_labelid = np.zeros(256, np.uint8)  # trainId -> labelId (0 = unlabeled for ignore)
    for lid, tid in CITYSCAPES_LABELID_TO_TRAINID.items():
        to_labelid[tid] = lid
    f = float(W)
    camera = {"extrinsic": {"baseline": 0.22, "pitch": float(np.arctan(0.05 * H / f)), "roll": 0.0,
                            "x": 1.7, "y": 0.0, "yaw": 0.0, "z": 1.5},
              "intrinsic": {"fx": f, "fy": f, "u0": W / 2, "v0": H / 2}}
    dirs = [root / d / split / city for d in ("leftImg8bit", "gtFine", "camera")]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, lab = make_scene(H, W, seed=seed + i)
        stem = f"{city}_000000_{i:06d}"
        cv2.imwrite(str(dirs[0] / f"{stem}_leftImg8bit.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(dirs[1] / f"{stem}_gtFine_labelIds.png"), to_labelid[lab])
        (dirs[2] / f"{stem}_camera.json").write_text(json.dumps(camera))
    return camera

