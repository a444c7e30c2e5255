"""Training from several datasets with different label sets: label spaces (hand-checked pixels),
the partial-label loss, the mixed dataset, recipes, the trainer-written record and the data
preparation from a source clone. Tests make their own small data."""

import csv
import subprocess

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fornet_ros.classes import (CAMVID, CITYSCAPES, CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, CLASS_ID, FIRST_SET_CODE,
                                IDD_LITE, IGNORE_INDEX, LABEL_SETS, LABEL_SPACES, LabelSpace, membership)
from fornet_ros.errors import FornetError
from fornet_ros.inference.checkpoint import read_checkpoint
from fornet_ros.tools.synthetic import make_scene, write_camvid_like
from fornet_ros.training.datasets import CamVid, FolderDataset, MixedDataset, repeat_factors
from fornet_ros.training.evaluation import evaluate
from fornet_ros.training.losses import fornet_loss, ohem_cross_entropy, pixel_cross_entropy, region_error_target
from fornet_ros.training.recipe import RecipeError, load_recipe
from fornet_ros.training.sources import SOURCES, Source, SourceError, archive, snap_colour_label, split_pix2pix
from fornet_ros.training.train import main as train_main

M = torch.from_numpy(membership())


def classes_of(code: int) -> set[str]:
    return {CITYSCAPES_CLASSES[i] for i in np.flatnonzero(membership()[code])}


# -- label spaces, pixel by pixel ------------------------------------------------------------------
def test_camvid_coarse_labels_are_sets_and_score_as_their_representative():
    raw = np.array([[8, 6, 5, 10], [3, 9, 1, 11]], np.uint8)  # car signsymbol tree bicyclist / road pedestrian building void
    codes = CAMVID.train_lut()[raw]
    assert classes_of(codes[0, 0]) == {"car", "truck", "bus", "train"}
    assert classes_of(codes[0, 1]) == {"traffic sign", "traffic light"}
    assert classes_of(codes[0, 2]) == {"vegetation", "terrain"}
    assert classes_of(codes[0, 3]) == {"rider", "bicycle", "motorcycle"}
    assert classes_of(codes[1, 2]) == {"building", "wall"}
    assert codes[1, 0] == CLASS_ID["road"] and codes[1, 1] == CLASS_ID["person"] and codes[1, 3] == IGNORE_INDEX
    # scoring: labels as the one-to-one map of models trained before; a truck prediction on a car pixel is right
    assert list(CAMVID.eval_lut()[raw[0]]) == [CLASS_ID[c] for c in ("car", "traffic sign", "vegetation", "rider")]
    pred = CAMVID.prediction_lut()
    assert pred[CLASS_ID["truck"]] == pred[CLASS_ID["train"]] == CLASS_ID["car"]
    assert pred[CLASS_ID["traffic light"]] == CLASS_ID["traffic sign"] and pred[CLASS_ID["bicycle"]] == CLASS_ID["rider"]
    assert pred[CLASS_ID["person"]] == CLASS_ID["person"] and pred[CLASS_ID["sky"]] == CLASS_ID["sky"]


def test_idd_lite_and_cityscapes_spaces():
    codes = IDD_LITE.train_lut()[np.array([0, 3, 2, 6, 255], np.uint8)]
    assert codes[0] == CLASS_ID["road"] and codes[3] == CLASS_ID["sky"] and codes[4] == IGNORE_INDEX
    assert classes_of(codes[1]) == {"car", "truck", "bus", "train", "motorcycle", "bicycle"}
    assert classes_of(codes[2]) == {"person", "rider"}
    with pytest.raises(ValueError, match="overlap"):  # sidewalk is in two of its sets: no single score mapping
        IDD_LITE.prediction_lut()
    assert CITYSCAPES.exact and CITYSCAPES.prediction_lut() is None
    assert CITYSCAPES.train_lut()[26] == CITYSCAPES.eval_lut()[26] == CLASS_ID["car"]  # labelId 26 = car
    assert CITYSCAPES.train_lut()[6] == IGNORE_INDEX  # labelId 6 = ground: not one of the 19


def test_every_set_of_every_space_has_a_code_and_unknown_names_are_refused():
    for space in LABEL_SPACES.values():
        for s in space.sets:
            assert s in LABEL_SETS
    assert FIRST_SET_CODE >= len(CITYSCAPES_CLASSES) and FIRST_SET_CODE + len(LABEL_SETS) < IGNORE_INDEX
    with pytest.raises(ValueError, match="unknown class"):
        LabelSpace("x", {0: ("car", "lorry")}, "test")
    with pytest.raises(ValueError, match="not in LABEL_SETS"):
        LabelSpace("x", {0: ("car", "sky")}, "test").train_lut()


# -- the partial-label loss -------------------------------------------------------------------------
def test_partial_loss_is_ce_for_exact_labels_and_minus_log_set_probability_for_sets():
    torch.manual_seed(0)
    x = torch.randn(2, 19, 6, 7, requires_grad=True)
    t = torch.randint(0, 19, (2, 6, 7))
    t[0, 0, 0] = IGNORE_INDEX
    exact = pixel_cross_entropy(x, t, M)
    ref = F.cross_entropy(x, t, ignore_index=IGNORE_INDEX, reduction="none")
    assert torch.allclose(exact, ref, atol=1e-5)
    car_set = int(CAMVID.train_lut()[8])
    t2 = t.clone()
    t2[1] = car_set
    loss = pixel_cross_entropy(x, t2, M)
    p = x.softmax(1)[1, [CLASS_ID[c] for c in ("car", "truck", "bus", "train")]].sum(0)
    assert torch.allclose(loss[1], -p.log(), atol=1e-5)
    assert loss[0, 0, 0] == 0
    loss.sum().backward()
    assert torch.isfinite(x.grad).all()  # ignore pixels give no NaN gradients


def test_a_fine_label_inside_the_coarse_set_costs_nothing_extra():
    # a model sure of "truck" is right on a CamVid car pixel (set loss ~0) but wrong under one-to-one
    logits = torch.full((1, 19, 1, 1), -10.0)
    logits[0, CLASS_ID["truck"]] = 10.0
    set_label = torch.tensor([[[int(CAMVID.train_lut()[8])]]])
    one_to_one = torch.tensor([[[CLASS_ID["car"]]]])
    assert pixel_cross_entropy(logits, set_label, M).item() < 1e-6
    assert pixel_cross_entropy(logits, one_to_one, M).item() > 19
    assert ohem_cross_entropy(logits, set_label, membership=M).item() < 1e-6
    # the selector's error target agrees: a coarse truck on a car-set pixel is not an error
    err = region_error_target(logits, set_label, 1, (1, 1), M)
    assert err.item() == 0 and region_error_target(logits, one_to_one, 1, (1, 1)).item() == 1


def test_fornet_loss_with_sets_runs_every_term(tmp_path):
    from fornet_ros.model import create_model
    model = create_model("fornet_s", num_classes=19)
    out = model(torch.randn(2, 3, 64, 96))
    t = torch.from_numpy(CAMVID.train_lut()[np.random.default_rng(0).integers(0, 12, (2, 64, 96)).astype(np.uint8)])
    total, parts = fornet_loss(out, t.long(), model.cfg, dice_weight=1.0, membership=M)
    assert torch.isfinite(total) and {"main", "dice", "aux", "selector", "total"} <= set(parts)
    total.backward()


# -- data preparation -------------------------------------------------------------------------------
def test_colour_labels_snap_to_the_palette_and_noise_is_ignored():
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[:, :20] = CITYSCAPES_PALETTE[CLASS_ID["road"]]
    rgb[:, 20:] = CITYSCAPES_PALETTE[CLASS_ID["car"]]
    rgb[:5] = (0, 0, 0)  # a void colour (ego vehicle, borders): stays ignored
    rgb[30, 5] = (255, 255, 255)  # far from every colour
    noisy = cv2.imdecode(cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 75])[1], cv2.IMREAD_COLOR)
    lab = snap_colour_label(noisy)
    assert (lab[10:, 2:17] == CLASS_ID["road"]).mean() > 0.95 and (lab[10:, 23:38] == CLASS_ID["car"]).mean() > 0.95
    assert (lab[:4] == IGNORE_INDEX).all() and lab[30, 5] == IGNORE_INDEX
    iso = np.zeros((5, 5, 3), np.uint8) + np.array(CITYSCAPES_PALETTE[CLASS_ID["road"]], np.uint8)
    iso[2, 2] = CITYSCAPES_PALETTE[CLASS_ID["sky"]]
    assert snap_colour_label(iso)[2, 2] == IGNORE_INDEX  # a pixel no neighbour shares is ringing


def test_pix2pix_pair_is_split_and_unsquashed():
    photo = np.full((32, 32, 3), 90, np.uint8)
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[:, :16] = CITYSCAPES_PALETTE[CLASS_ID["sky"]][::-1]  # BGR
    colour[:, 16:] = CITYSCAPES_PALETTE[CLASS_ID["building"]][::-1]
    img, lab = split_pix2pix(np.hstack([photo, colour]))
    assert img.shape == (32, 64, 3) and lab.shape == (32, 64)
    assert (lab[:, :32] == CLASS_ID["sky"]).all() and (lab[:, 32:] == CLASS_ID["building"]).all()
    with pytest.raises(SourceError, match="twice as wide"):
        split_pix2pix(photo)


def test_archive_extracts_a_commit_and_checks_file_counts(tmp_path):
    repo = tmp_path / "repo"
    (repo / "data" / "a").mkdir(parents=True)
    for i in range(3):
        (repo / "data" / "a" / f"{i}.txt").write_text(str(i))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "x"], check=True)
    commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    archive(repo / ".git", Source("t", "o/r", commit, {"data/a": 3}, "test"), tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "data" / "a").iterdir()) == ["0.txt", "1.txt", "2.txt"]
    with pytest.raises(SourceError, match="holds 3 files, expected 4"):
        archive(repo / ".git", Source("t", "o/r", commit, {"data/a": 4}, "test"), tmp_path / "out2")
    with pytest.raises(SourceError, match="git archive failed"):
        archive(repo / ".git", Source("t", "o/r", "0" * 40, {"data/a": 3}, "test"), tmp_path / "out3")
    assert set(SOURCES) == {"cityscapes_fine", "cityscapes_lowres", "idd_lite"}


# -- mixed datasets and recipes ---------------------------------------------------------------------
def write_idd_like(root, n=4, size=(64, 96)):
    """A folder dataset with IDD level-1 labels (from the synthetic scene's train IDs)."""
    to_l1 = np.full(256, 255, np.uint8)
    for tid, l1 in {0: 0, 1: 1, 2: 5, 8: 5, 10: 6, 11: 2, 13: 3, 5: 4}.items():
        to_l1[tid] = l1
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            img, lab = make_scene(*size, seed=100 + i)
            cv2.imwrite(str(root / "images" / split / f"{i}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(root / "labels" / split / f"{i}.png"), to_l1[lab])
    (root / "classes.yaml").write_text("label_space: idd_lite\n")
    return root


def test_mixed_dataset_draws_each_dataset_with_its_weight(tmp_path):
    cam = CamVid(write_camvid_like(tmp_path / "camvid", n=6, size=(64, 96)), "train")
    idd = FolderDataset(write_idd_like(tmp_path / "idd"), "train", partial=True)
    mix = MixedDataset([cam, idd], [3.0, 1.0])
    assert len(mix) == 10 and mix.locate(6) == (idd, 0) and mix.locate(5) == (cam, 5)
    w = mix.sample_weights()
    assert w.sum() == pytest.approx(1) and w[:6].sum() == pytest.approx(0.75)
    assert idd.load(0)[1].max() >= FIRST_SET_CODE and idd.prediction_lut is None and idd.space is IDD_LITE


def test_repeat_factors_raise_images_with_rare_classes_by_sqrt_t_over_f():
    # 10 images; class 0 in all, class 1 in 1 (f = 0.1), class 2 in 5 (f = 0.5), class 3 in none
    presence = np.zeros((10, 4), bool)
    presence[:, 0] = True
    presence[0, 1] = True
    presence[:5, 2] = True
    r = repeat_factors(presence, 0.4)
    assert r[0] == pytest.approx(2.0)  # sqrt(0.4 / 0.1); its other class (f = 0.5) would give 1
    assert np.allclose(r[1:], 1.0)  # f >= t: not repeated
    assert np.allclose(repeat_factors(presence, 0.0), 1.0)


def test_class_presence_counts_exact_labels_over_a_pixel_fraction(tmp_path):
    idd = FolderDataset(write_idd_like(tmp_path / "idd"), "train", partial=True)
    pres = idd.class_presence(19, min_fraction=0.0)
    # IDD-Lite labels road and sky exactly; vehicles and people only as sets: never "present"
    assert pres[:, CLASS_ID["road"]].all() and not pres[:, CLASS_ID["car"]].any()
    lab = idd.load(0)[1]
    fraction = (lab == CLASS_ID["sky"]).mean()
    assert idd.class_presence(19, min_fraction=fraction)[0, CLASS_ID["sky"]]
    assert not idd.class_presence(19, min_fraction=fraction + 1e-3)[0, CLASS_ID["sky"]]
    cam = CamVid(write_camvid_like(tmp_path / "camvid", n=6, size=(64, 96)), "train")
    mix = MixedDataset([cam, idd], [3.0, 1.0])
    w = mix.sample_weights(balance=0.5)  # within each dataset by repeat factor, the datasets' shares kept
    assert w.sum() == pytest.approx(1) and w[:6].sum() == pytest.approx(0.75)
    r = repeat_factors(cam.class_presence(19), 0.5)
    assert np.allclose(w[:6] / w[:6].sum(), r / r.sum())


def write_recipe(tmp_path, body: str):
    p = tmp_path / "r.yaml"
    p.write_text(body)
    return p


RECIPE = """
datasets:
  - {type: camvid, root: "${FORNET_DATA}/camvid", splits: [train], exclude_drives: [0006R0], weight: 2}
  - {type: folder, root: "${FORNET_DATA}/idd", splits: [train], weight: 1, base_scale: 1.5}
val: {type: camvid, root: "${FORNET_DATA}/camvid", split: val, limit: 2}
iters: 4
eval_every: 2
batch_size: 2
crop: [48, 64]
warmup: 1
lr: 0.004
"""


def test_recipe_trains_on_a_mix_and_the_record_is_written_whole(tmp_path):
    write_camvid_like(tmp_path / "data" / "camvid", n=4, size=(64, 96))
    write_idd_like(tmp_path / "data" / "idd")
    recipe = write_recipe(tmp_path, RECIPE)
    out = tmp_path / "run"
    res = train_main(["--recipe", str(recipe), "--data-dir", str(tmp_path / "data"), "--out", str(out), "--no-progress"])
    assert 0 <= res["miou"] <= 1
    with open(out / "log.csv") as f:
        assert max(int(r["step"]) for r in csv.DictReader(f)) == 4  # iters came from the recipe
    train = read_checkpoint(out / "last.pt")["train"]
    assert [d["name"] for d in train["datasets"]] == ["camvid", "idd"]
    assert [d["label_space"] for d in train["datasets"]] == ["camvid", "idd_lite"]
    assert train["datasets"][0]["exclude_drives"] == ["0006R0"] and train["datasets"][0]["files"] == 2
    assert train["recipe"] == recipe.read_text() and (out / "recipe.yaml").read_text() == recipe.read_text()
    assert len(train["stages"]) == 1 and train["stages"][0]["partial_labels"] is True
    assert train["stages"][0]["precision"] == "auto" and train["stages"][0]["dtype"] == "fp32"  # auto, resolved on the CPU
    # --init appends a stage to the checkpoint's record; an option it cannot honour is refused
    out2 = tmp_path / "run2"
    train_main(["--recipe", str(recipe), "--data-dir", str(tmp_path / "data"), "--out", str(out2), "--no-progress",
                "--init", str(out / "last.pt"), "--iters", "2", "--class-balance", "0.3"])
    train2 = read_checkpoint(out2 / "last.pt")["train"]
    assert len(train2["stages"]) == 2 and train2["stages"][1]["what"] == "from last.pt"
    assert train2["stages"][0]["class_balance"] == 0 and train2["stages"][1]["class_balance"] == 0.3
    assert train2["total_iters"] == 6
    with pytest.raises(FornetError, match="--init takes the model from the checkpoint; --variant"):
        train_main(["--recipe", str(recipe), "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "r3"),
                    "--init", str(out / "last.pt"), "--variant", "fornet_s"])


def test_recipe_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("FORNET_DATA", raising=False)
    known = {"iters", "lr"}
    with pytest.raises(RecipeError, match="recipe not found"):
        load_recipe(tmp_path / "none.yaml", known)
    with pytest.raises(RecipeError, match=r"unknown option\(s\) \['lrr'\]"):
        load_recipe(write_recipe(tmp_path, "lrr: 1\ndatasets: [{type: camvid, root: x}]\n"), known)
    with pytest.raises(RecipeError, match="non-empty list"):
        load_recipe(write_recipe(tmp_path, "iters: 3\n"), known)
    with pytest.raises(RecipeError, match="unset environment variable"):
        load_recipe(write_recipe(tmp_path, "datasets: [{type: camvid, root: '${FORNET_DATA}/c'}]\n"), known)
    with pytest.raises(RecipeError, match="unknown type 'kitti'"):
        load_recipe(write_recipe(tmp_path, "datasets: [{type: kitti, root: x}]\n"), known)
    with pytest.raises(RecipeError, match=r"unknown key\(s\) \['wieght'\]"):
        load_recipe(write_recipe(tmp_path, "datasets: [{type: camvid, root: x, wieght: 2}]\n"), known)


def test_scoring_a_coarse_dataset_maps_predictions_into_its_classes():
    class Always:  # a segmenter that says "truck" everywhere
        classes, input_size, topk_ratio = CITYSCAPES_CLASSES, (8, 8), 1.0
        cfg = type("C", (), {"variant": "x"})

        def __call__(self, img):
            return type("R", (), {"labels": np.full(img.shape[:2], CLASS_ID["truck"], np.uint8), "selected": None})

    label = np.full((8, 8), CLASS_ID["car"], np.uint8)  # a CamVid car, scored as its representative
    img = np.zeros((8, 8, 3), np.uint8)
    plain = evaluate(Always(), [(img, label)], progress=False)
    mapped = evaluate(Always(), [(img, label)], progress=False, prediction_lut=CAMVID.prediction_lut())
    assert plain["miou"] == 0 and mapped["miou"] == 1


def test_trained_on_warning_compares_datasets_not_split_names(tmp_path):
    from fornet_ros.training.evaluation import trained_on_scored_data
    camvid_record = {"dataset": "camvid", "splits": ["train", "val"], "exclude_drives": ["0006R0"]}
    # a CamVid model scored on Cityscapes' val: another dataset, no warning
    assert trained_on_scored_data(camvid_record, "val", dataset="cityscapes") is None
    assert "camvid split 'val'" in trained_on_scored_data(camvid_record, "val", dataset="camvid")
    # a multi-dataset record: matched by type and source
    fine, other = tmp_path / "cityscapes_fine", tmp_path / "elsewhere"
    for d, line in ((fine, "From github.com/a/b at commit 1"), (other, "From github.com/c/d at commit 2")):
        d.mkdir()
        (d / "SOURCE.md").write_text(f"# x\n\n{line}\n")
    mix = {"datasets": [{"type": "cityscapes", "name": "cityscapes_fine", "splits": ["train"], "exclude_drives": None,
                         "source": "From github.com/a/b at commit 1"},
                        {"type": "camvid", "name": "camvid", "splits": ["train", "val"], "exclude_drives": ["0006R0"],
                         "source": None}]}
    assert trained_on_scored_data(mix, "val", dataset="cityscapes", root=fine) is None  # Frankfurt val: held out
    assert trained_on_scored_data(mix, "train", dataset="cityscapes", root=fine)
    assert trained_on_scored_data(mix, "train", dataset="cityscapes", root=other) is None  # another source
    assert trained_on_scored_data(mix, "train", ["0006R0"], dataset="camvid", root=tmp_path / "camvid") is None
    assert trained_on_scored_data(mix, "val", dataset="camvid", root=tmp_path / "camvid")


def test_a_dataset_with_overlapping_sets_trains_one_to_one_and_refuses_only_scoring(tmp_path):
    idd = FolderDataset(write_idd_like(tmp_path / "idd"), "train")  # one-to-one (the ablation's)
    assert idd.load(0)[1].max() < len(CITYSCAPES_CLASSES) or idd.load(0)[1].max() == IGNORE_INDEX
    with pytest.raises(ValueError, match="overlap"):
        idd.prediction_lut
