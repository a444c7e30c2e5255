"""``fornet bench-costmap`` and ``fornet bench-points``: the numpy side of a frame - ground projection into
the costmap layers, depth fusion, LiDAR labelling, depth registration (no model; the network's latency is
:mod:`.bench`)."""

from __future__ import annotations

import time

import torch

from .bench import _median_ms, machine_name


def bench_costmap(size=(1024, 2048), runs: int = 20, grid=(400, 400), resolution: float = 0.1) -> dict:
    """Per-frame projection time of a label image into the default 5 layers (lookup precomputed)
    and the one-off lookup build time; Cityscapes' camera (f = 2262 px, 1.22 m, pitch 0.05 rad)."""
    from ..classes import CITYSCAPES_CLASSES
    from ..mapping import DEFAULT_LAYER_CONFIG, CameraModel, GridFuser, GridSpec, LayerConfig, Pose, build_lookup
    from .synthetic import make_scene
    H, W = size
    s = W / 2048
    cam = CameraModel(W, H, (2262.52 * s, 0, 1096.98 * s, 0, 2265.30 * s, 513.137 * s, 0, 0, 1))
    pose = Pose(1.7, 0.1, 1.22, 0.0, 0.05, 0.007)
    spec = GridSpec(resolution, grid[0], grid[1], (0.0, -grid[1] * resolution / 2))
    cfg = LayerConfig.from_dict(DEFAULT_LAYER_CONFIG, CITYSCAPES_CLASSES)
    t = time.perf_counter()
    lk = build_lookup(cam, pose, spec, (H, W), max_range=30.0)
    build_ms = (time.perf_counter() - t) * 1000
    _, labels = make_scene(H, W, seed=0, horizon=0.5)

    def frame():
        f = GridFuser(spec, cfg)
        f.add(labels, lk)
        f.grids()
        f.obstacle_points()
    frame_ms = _median_ms(frame, runs, 3, lambda: None)
    return {"size": [H, W], "layers": len(cfg.layers), "grid": list(grid), "resolution": resolution,
            "valid_pixels": lk.valid_pixels, "ground_pixels_kept": int(lk.ground_pixels.size),
            "lookup_build_ms": round(build_ms, 1), "frame_ms_median": round(frame_ms, 3), "runs": runs,
            "machine": machine_name(), "threads": torch.get_num_threads()}


def bench_points(size=(480, 640), lidar_points: int = 100_000, runs: int = 20) -> dict:
    """Per-frame cost of depth fusion (depth -> organised labelled cloud records) at ``size`` and of
    LiDAR labelling (project, z-buffer, look up) for ``lidar_points`` points; median of ``runs``."""
    import numpy as np
    from ..mapping import CameraModel, Pose
    from ..mapping.points import cloud_array, depth_points, lidar_labels, lidar_to_optical, obstacle_points, register_depth
    H, W = size
    f = 0.8 * W
    cam = CameraModel(W, H, (f, 0, (W - 1) / 2, 0, f, (H - 1) / 2, 0, 0, 1), (-0.1, 0.01, 0.0, 0.0, 0.0))
    rng = np.random.default_rng(0)
    depth = rng.integers(300, 20000, (H, W)).astype(np.uint16)
    labels = rng.integers(0, 19, (H, W)).astype(np.uint8)
    conf = rng.random((H, W), np.float32)
    depth_points(depth, cam, "16UC1")  # the per-camera ray table is built once
    depth_ms = _median_ms(lambda: cloud_array(depth_points(depth, cam, "16UC1")[0], labels, conf), runs, 2,
                          lambda: None)
    pts = np.c_[rng.uniform(-40, 40, (lidar_points, 2)), rng.uniform(-2, 2, lidar_points)]
    R, t = lidar_to_optical(Pose(0, 0, 1.5, 0, 0, 0), Pose(0, 0, 1.8, 0, 0, 0))
    lidar_ms = _median_ms(lambda: lidar_labels(pts, R, t, cam, labels, conf), runs, 2, lambda: None)
    # depth registration: the same depth seen from a camera 5 cm to the side, reprojected into this one
    src = depth_points(depth, cam, "16UC1")[0]
    register_ms = _median_ms(lambda: register_depth(src, cam, np.eye(3), np.array([0.05, 0.0, 0.0])), runs, 2,
                             lambda: None)
    # the costmap's depth-placed obstacles: obstacle-class points -> grid frame, height band
    lut = np.zeros(256, bool)
    lut[11:19] = True  # person .. bicycle (Cityscapes train IDs)
    obstacles_ms = _median_ms(lambda: obstacle_points(src, labels, Pose(0, 0, 1.5, 0, 0, 0), lut, (0.05, 2.0)),
                              runs, 2, lambda: None)
    return {"depth_size": [H, W], "depth_fusion_ms_median": round(depth_ms, 2), "lidar_points": lidar_points,
            "lidar_labelling_ms_median": round(lidar_ms, 2), "depth_registration_ms_median": round(register_ms, 2),
            "depth_obstacles_ms_median": round(obstacles_ms, 2), "runs": runs, "machine": machine_name(),
            "threads": torch.get_num_threads()}


def add_points_arguments(p):
    p.description = ("Per-frame cost of depth fusion (depth image -> organised labelled cloud), of LiDAR "
                     "labelling (projection with distortion, occlusion check, label lookup), of depth registration "
                     "and of the costmap's depth-placed obstacles, median of N runs.")
    p.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("H", "W"), help="depth image size")
    p.add_argument("--lidar-points", type=int, default=100_000, help="points per LiDAR scan")
    p.add_argument("--runs", type=int, default=20, help="timed runs (median reported)")


def run_points(a):
    import json
    from ..errors import FornetError
    if a.runs < 1 or min(a.size) < 8 or a.lidar_points < 1:
        raise FornetError("--runs and --lidar-points must be >= 1 and --size at least 8x8")
    print(json.dumps(bench_points(tuple(a.size), a.lidar_points, a.runs), indent=2))


# -- command line ------------------------------------------------------------------------------

def add_costmap_arguments(p):
    p.description = ("Per-frame ground projection time of a label image into the default 5 costmap layers "
                     "(lookup precomputed), and the one-off lookup build time (median of N runs).")
    p.add_argument("--size", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"), help="label image size")
    p.add_argument("--runs", type=int, default=20, help="timed runs (median reported)")
    p.add_argument("--grid", type=int, nargs=2, default=(400, 400), metavar=("W", "H"), help="cells")
    p.add_argument("--resolution", type=float, default=0.1, help="cell size (m)")


def run_costmap(a):
    import json
    from ..errors import FornetError
    if a.runs < 1 or min(a.size) < 16 or min(a.grid) < 1 or not a.resolution > 0:
        raise FornetError("--runs and --grid must be >= 1, --size at least 16x16 and --resolution > 0")
    print(json.dumps(bench_costmap(tuple(a.size), a.runs, tuple(a.grid), a.resolution), indent=2))
