"""Costmap scoring (fornet_ros.mapping.costmap_score) against hand-counted cells, and end to end on the clip."""

import numpy as np
import pytest

from fornet_ros.classes import CITYSCAPES_CLASSES
from fornet_ros.mapping.costmap_score import CostmapScorer, GridScore, combined_values, score_marks
from fornet_ros.mapping import DEFAULT_LAYER_CONFIG, CameraModel, GridSpec, LayerConfig, Pose

NAMES, COSTS = ("road", "side", "cars"), (0, 50, 100)


def marks(*rows):
    """Layer hits from strings over 8 cells: one string per layer, 'x' = hit."""
    return np.array([[c == "x" for c in r] for r in rows])


def test_hand_counted_cells():
    # cells:          0 1 2 3 4 5 6 7
    obs_gt = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)  # cells 6, 7 unseen in the ground truth
    gt = marks("xx......", "..x.....", "...xx...")
    obs_pr = np.array([1, 1, 1, 1, 1, 1, 1, 0], bool)
    pr = marks("x.......", "..x..x..", "....x.x.")  # cars: cell 3 missed, cell 6 outside the scored cells
    r = score_marks(pr, obs_pr, gt, obs_gt, NAMES, COSTS)["layers"]
    # road (cost 0): IoU {0} / {0, 1}; blocks nothing: no obstacle shares
    assert r["road"] == {"cost": 0, "iou": 0.5, "false_obstacle": None, "missed_obstacle": None,
                         "gt_cells": 2, "pred_cells": 1, "gt_free_cells": 4}
    # side: gt {2}, pred {2, 5}: IoU 1/2; gt-free {0,1,3,4,5}: 5 marked falsely -> 1/5; missed 0/1
    assert r["side"]["iou"] == 0.5 and r["side"]["false_obstacle"] == pytest.approx(0.2)
    assert r["side"]["missed_obstacle"] == 0.0
    # cars: gt {3, 4}, pred {4} (+6 unscored): IoU 1/2; false 0/4; missed {3} -> 1/2
    assert (r["cars"]["iou"], r["cars"]["false_obstacle"], r["cars"]["missed_obstacle"]) == (0.5, 0.0, 0.5)
    # combined, lethal cells: gt {3, 4}, pred {4, 6}; gt free (cost 0) = {0, 1, 5}: none made lethal
    assert r["combined"]["iou"] == 0.5 and r["combined"]["false_obstacle"] == 0.0
    assert r["combined"]["missed_obstacle"] == 0.5 and r["combined"]["gt_free_cells"] == 3


def test_combined_counts_lethal_made_from_free_and_sidewalk_under_a_car_as_missed():
    obs = np.ones(4, bool)
    gt = marks("x...", ".x..", "..xx")
    pr = marks("....", "..x.", "xx..")  # free road and sidewalk marked lethal; one car only 50; one car unknown
    pr_obs = np.array([1, 1, 1, 0], bool)
    c = score_marks(pr, pr_obs, gt, obs, NAMES, COSTS)["layers"]["combined"]
    assert combined_values(gt, obs, COSTS).tolist() == [0, 50, 100, 100]
    assert combined_values(pr, pr_obs, COSTS).tolist() == [100, 100, 50, -1]
    assert c["false_obstacle"] == 1.0  # the one free cell (0) was made lethal; the sidewalk cell is not "free"
    assert c["missed_obstacle"] == 1.0 and c["iou"] == 0.0
    assert c["gt_free_cells"] == 1 and c["pred_cells"] == 2


def test_counts_pool_over_frames_and_perfect_is_perfect():
    s = GridScore(NAMES, COSTS)
    obs = np.ones(8, bool)
    gt = marks("xx......", "..x.....", "...xx...")
    s.update(gt, obs, gt, obs)
    r = s.compute()["layers"]
    assert all(r[n]["iou"] == 1.0 for n in ("road", "side", "cars", "combined"))
    assert r["cars"]["false_obstacle"] == 0.0 and r["cars"]["missed_obstacle"] == 0.0
    s.update(marks("........", "........", "........"), obs, gt, obs)  # second frame: nothing predicted
    r = s.compute()
    assert r["frames"] == 2 and r["layers"]["cars"]["iou"] == 0.5 and r["layers"]["cars"]["missed_obstacle"] == 0.5
    empty = score_marks(marks("....", "....", "...."), np.zeros(4, bool), marks("....", "....", "...."),
                        np.zeros(4, bool), NAMES, COSTS)["layers"]["cars"]
    assert empty["iou"] is None and empty["false_obstacle"] is None and empty["missed_obstacle"] is None
    with pytest.raises(ValueError, match="3 layers"):
        s.update(np.zeros((2, 8), bool), obs, np.zeros((2, 8), bool), obs)


def test_scorer_projects_both_label_images_with_one_lookup():
    """A level camera 1.5 m up sees road below its principal row; a car whose bottom row is 100 stands
    6 m ahead. Predicting it 10 rows lower puts its contact at 1.5 * 100 / 35 = 4.3 m, on ground-truth
    road: no cell in common, every predicted car cell a false obstacle. Predicting it 10 rows higher
    puts the contact at 10 m, behind the true car, where the ground truth sees no ground: unscored."""
    W, H, F = 200, 150, 100.0
    cam = CameraModel(W, H, (F, 0, 100.0, 0, F, 75.0, 0, 0, 1))
    cfg = LayerConfig.from_dict(DEFAULT_LAYER_CONFIG, CITYSCAPES_CLASSES)
    sc = CostmapScorer(cam, Pose(z=1.5), cfg, GridSpec(0.1, 300, 200, (0.0, -10.0)), max_range=30.0)
    gt = np.full((H, W), 10, np.uint8)  # sky
    gt[76:] = 0
    gt[80:101, 90:111] = 13
    pred = gt.copy()
    pred[101:111, 90:111] = 13
    sc.update(gt, gt)
    same = sc.compute()["layers"]
    assert same["vehicles"]["iou"] == 1.0 and same["combined"]["iou"] == 1.0 and same["road"]["iou"] == 1.0
    sc2 = CostmapScorer(cam, Pose(z=1.5), cfg, GridSpec(0.1, 300, 200, (0.0, -10.0)), max_range=30.0)
    p, g = sc2.update(pred, gt)
    r = sc2.compute()
    v = r["layers"]["vehicles"]
    assert v["iou"] == 0.0 and v["missed_obstacle"] == 1.0 and v["gt_cells"] >= 10 and v["pred_cells"] >= 10
    assert v["false_obstacle"] == pytest.approx(v["pred_cells"] / v["gt_free_cells"])
    assert r["layers"]["combined"]["missed_obstacle"] == 1.0
    high = pred.copy()
    high[:] = gt
    high[91:101, 90:111] = 0  # the car ends at row 90
    sc3 = CostmapScorer(cam, Pose(z=1.5), cfg, GridSpec(0.1, 300, 200, (0.0, -10.0)), max_range=30.0)
    sc3.update(high, gt)
    v3 = sc3.compute()["layers"]["vehicles"]
    assert v3["missed_obstacle"] == 1.0 and v3["pred_cells"] <= 1  # its cells are behind the true car: unscored
    assert 3.5 < r["pixel_spans_cells_beyond_m"] < 4.2 and r["grid"]["max_range"] == 30.0
    np.testing.assert_array_equal(g.grids()["combined"] >= 0, g.observed.reshape(200, 300))


def test_clip_ground_truth_scores_perfectly_against_itself():
    from fornet_ros.tools import clip
    c = clip.load_clip(limit=2)
    cfg = LayerConfig.from_dict(DEFAULT_LAYER_CONFIG, CITYSCAPES_CLASSES)
    sc = CostmapScorer(clip.camera_model(c.camera_info), clip.camera_pose(), cfg)
    for gt in c.labels:
        sc.update(gt, gt)
    r = sc.compute()
    assert r["frames"] == 2 and 7.5 < r["pixel_spans_cells_beyond_m"] < 9.0
    for name, layer in r["layers"].items():
        assert layer["iou"] in (1.0, None), name
        assert layer["false_obstacle"] in (0.0, None) and layer["missed_obstacle"] in (0.0, None)
    assert r["layers"]["road"]["gt_cells"] > 1000 and r["layers"]["vehicles"]["gt_cells"] > 0


def test_tolerance_forgives_a_contact_one_cell_off_and_not_three():
    # a 5 x 6 grid, one layer of cost 100; the ground truth marks column 2 of rows 1..3
    shape, names, costs = (5, 6), ("cars",), (100,)
    obs = np.ones(30, bool)
    gt = np.zeros((1, 5, 6), bool)
    gt[0, 1:4, 2] = True
    off1 = np.zeros_like(gt)
    off1[0, 1:4, 3] = True  # one column off
    off3 = np.zeros_like(gt)
    off3[0, 1:4, 5] = True  # three columns off
    args = dict(names=names, costs=costs, shape=shape, tolerance_cells=1)
    r1 = score_marks(off1.reshape(1, -1), obs, gt.reshape(1, -1), obs, **args)["layers"]["cars"]
    assert r1["iou"] == 0.0 and r1["missed_obstacle"] == 1.0 and r1["false_obstacle"] == pytest.approx(3 / 27)
    assert r1["missed_obstacle_within"] == 0.0 and r1["false_obstacle_within"] == 0.0
    r3 = score_marks(off3.reshape(1, -1), obs, gt.reshape(1, -1), obs, **args)["layers"]["cars"]
    assert r3["missed_obstacle_within"] == 1.0 and r3["false_obstacle_within"] == pytest.approx(3 / 27)
    r = score_marks(off3.reshape(1, -1), obs, gt.reshape(1, -1), obs, names, costs, shape=shape, tolerance_cells=3)
    assert r["tolerance_cells"] == 3 and r["layers"]["cars"]["missed_obstacle_within"] == 0.0
    assert "missed_obstacle_within" not in score_marks(off1.reshape(1, -1), obs, gt.reshape(1, -1), obs, names,
                                                       costs)["layers"]["cars"]
    with pytest.raises(ValueError, match="shape"):
        GridScore(names, costs, tolerance_cells=1)
