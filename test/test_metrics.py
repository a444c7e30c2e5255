import numpy as np
import pytest

from fornet_ros.training.metrics import ConfusionMatrix, SegmentationMetrics, boundary_region


def test_confusion_matrix_hand_computed():
    t = np.array([[0, 0, 1, 1], [0, 0, 1, 255]], np.uint8)
    p = np.array([[0, 1, 1, 1], [0, 0, 2, 2]], np.uint8)
    cm = ConfusionMatrix(3)
    cm.update(t, p)
    # class 0: tp 3, fp 0, fn 1 -> 3/4 ; class 1: tp 2, fp 1, fn 1 -> 2/4 ; class 2 absent from truth
    iou = cm.iou()
    assert iou[0] == pytest.approx(0.75) and iou[1] == pytest.approx(0.5) and iou[2] == 0.0
    assert cm.miou() == pytest.approx(0.625)  # over classes present in the truth only
    assert cm.pixel_accuracy() == pytest.approx(5 / 7)
    with pytest.raises(ValueError, match="shape"):
        cm.update(t, p[:, :2])


def test_boundary_region_of_square():
    m = np.zeros((10, 10), bool)
    m[2:8, 2:8] = True
    b1 = boundary_region(m, 1)
    assert b1.sum() == 36 - 16  # 6x6 square minus its 4x4 interior
    b2 = boundary_region(m, 2)
    assert b2.sum() == 36 - 4
    assert not (b2 & ~m).any()


def test_boundary_iou_perfect_and_shifted():
    t = np.zeros((20, 20), np.uint8)
    t[5:15, 5:15] = 1
    m = SegmentationMetrics(2, ["a", "b"], boundary_px=1, thin_classes=["b"])
    m.update(t, t.copy())
    r = m.compute()
    assert r["miou"] == 1.0 and r["boundary_iou"] == 1.0 and r["thin_miou"] == 1.0
    shifted = np.roll(t, 1, axis=1)
    m = SegmentationMetrics(2, ["a", "b"], boundary_px=1, thin_classes=["b"])
    m.update(t, shifted)
    r = m.compute()
    # class b: truth band = 36 px square ring; prediction shifted by 1 column
    g, p = boundary_region(t == 1, 1), boundary_region(shifted == 1, 1)
    assert r["per_class_boundary_iou"]["b"] == pytest.approx((g & p).sum() / (g | p).sum())
    assert r["per_class_iou"]["b"] == pytest.approx(90 / 110)
    assert r["boundary_iou"] < r["miou"]  # boundaries punish the shift more than region IoU


def test_hard_region_recall():
    t = np.zeros((4, 4), np.uint8)
    p = t.copy()
    p[0, :] = 1  # 4 errors in row 0
    sel = np.zeros((4, 4), bool)
    sel[0, :2] = True  # covers 2 of them
    sel[3, :] = True
    m = SegmentationMetrics(2, ["a", "b"])
    m.update(t, p, sel)
    r = m.compute()
    assert r["hard_region_recall"] == pytest.approx(0.5)
    assert r["selected_fraction"] == pytest.approx(6 / 16)
    assert r["thin_miou"] is None  # no thin class present


def test_boundary_band_includes_the_image_border():
    """As in the Boundary IoU reference code: a mask cut by the image border has boundary there."""
    from fornet_ros.training.metrics import boundary_region
    full = np.ones((10, 12), bool)
    band = boundary_region(full, 2)
    assert band[:2].all() and band[-2:].all() and band[:, :2].all() and band[:, -2:].all()
    assert not band[2:-2, 2:-2].any()


def test_nanmean_skips_undefined_values():
    from fornet_ros.training.metrics import nanmean
    assert nanmean([1.0, float("nan"), 0.5]) == 0.75
    assert nanmean([float("nan")]) is None and nanmean([]) is None
