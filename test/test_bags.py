import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fornet_ros.tools.bag_eval import evaluate_bag
from fornet_ros.tools.bags import BagError, T0_NS, from_cityscapes, from_folder, iter_frames, open_reader
from fornet_ros.classes import CAMVID_TO_TRAINID, CITYSCAPES_CLASSES, CITYSCAPES_LABELID_TO_TRAINID, lookup_table
from fornet_ros.tools.synthetic import write_cityscapes_like


@pytest.fixture(scope="module")
def cityscapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("cs")
    cam = write_cityscapes_like(root, n=3, size=(64, 128))
    return root, cam


@pytest.mark.parametrize("storage,compressed", [("mcap", False), ("sqlite3", True)])
def test_from_cityscapes_round_trip(tmp_path, cityscapes, storage, compressed):
    root, cam = cityscapes
    info = from_cityscapes(root, tmp_path / "b", storage=storage, compressed=compressed)
    assert info["frames"] == 3 and info["with_labels"] == 3
    e = cam["extrinsic"]
    assert info["camera_pose"] == [e["x"], e["y"], e["z"], e["roll"], e["pitch"], e["yaw"]]
    frames = list(iter_frames(tmp_path / "b"))
    assert len(frames) == 3
    lut = lookup_table(CITYSCAPES_LABELID_TO_TRAINID)
    imgs = sorted((root / "leftImg8bit" / "val" / "synthtown").glob("*.png"))
    for i, (c, stamp, rgb, gt) in enumerate(frames):
        assert c == "camera" and stamp == T0_NS + int(i * 1e9 / 17.0)
        np.testing.assert_array_equal(rgb, cv2.imread(str(imgs[i]))[:, :, ::-1])  # png: lossless
        raw = cv2.imread(str(imgs[i]).replace("leftImg8bit", "gtFine").replace("_gtFine.png", "_gtFine_labelIds.png"),
                         cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(gt, lut[raw])
    r = open_reader(tmp_path / "b")
    topics = {c.topic: c for c in r.connections}
    r.close()
    img_topic = "/camera/image_raw/compressed" if compressed else "/camera/image_raw"
    assert set(topics) == {img_topic, "/camera/camera_info", "/camera/ground_truth/labels"}
    assert all(c.digest for c in topics.values())  # RIHS01 type hashes for `ros2 bag play`


def test_camera_info_from_camera_json(tmp_path, cityscapes):
    from fornet_ros.tools.bags import typestore
    root, cam = cityscapes
    from_cityscapes(root, tmp_path / "b")
    r = open_reader(tmp_path / "b")
    ts = typestore()
    conn = next(c for c in r.connections if c.topic.endswith("camera_info"))
    msg = ts.deserialize_cdr(next(r.messages(connections=[conn]))[2], conn.msgtype)
    r.close()
    i = cam["intrinsic"]
    assert list(msg.k) == [i["fx"], 0, i["u0"], 0, i["fy"], i["v0"], 0, 0, 1] and (msg.width, msg.height) == (128, 64)


def test_from_folder_with_camvid_labels(tmp_path):
    from fornet_ros.tools.synthetic import write_camvid_like
    root = write_camvid_like(tmp_path / "cv", n=2, size=(48, 64), splits=("train",))
    info = from_folder(root / "train", tmp_path / "b", labels=root / "trainannot", mapping="camvid")
    assert info == {"bag": str(tmp_path / "b"), "frames": 2, "camera": "camera", "with_labels": 2}
    lut = lookup_table(CAMVID_TO_TRAINID)
    annots = sorted((root / "trainannot").glob("*.png"))
    gts = [gt for *_, gt in iter_frames(tmp_path / "b")]
    assert len(gts) == 2
    for gt, annot in zip(gts, annots):
        np.testing.assert_array_equal(gt, lut[cv2.imread(str(annot), cv2.IMREAD_UNCHANGED)])


def test_bag_errors(tmp_path, cityscapes):
    root, _ = cityscapes
    with pytest.raises(BagError, match="bag not found"):
        list(iter_frames(tmp_path / "nope"))
    with pytest.raises(BagError, match="folder not found"):
        from_cityscapes(tmp_path, tmp_path / "b")
    from_cityscapes(root, tmp_path / "b")
    with pytest.raises(BagError, match="exists"):
        from_cityscapes(root, tmp_path / "b")
    with pytest.raises(BagError, match="camera 'left' not in"):
        list(iter_frames(tmp_path / "b", camera="left"))
    # truncate the storage file: a clear error, never a traceback from the CLI
    mcap = next((tmp_path / "b").glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[:200])
    p = subprocess.run([sys.executable, "-m", "fornet_ros.cli", "bag", "info", str(tmp_path / "b")],
                       capture_output=True, text=True)
    p2 = subprocess.run([sys.executable, "-m", "fornet_ros.cli", "bag", "eval", str(tmp_path / "b"),
                         "--checkpoint", "x.pt"], capture_output=True, text=True)
    for proc in (p, p2):
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert re.match(r"fornet( [\w-]+)*: error: ", proc.stderr)  # one line, named by the sub-command


class Oracle:
    """Stand-in segmenter returning a fixed function of the ground truth (tests the scoring path)."""

    def __init__(self, truth_by_image, shift=0):
        from fornet_ros.config import ModelConfig
        self.truth, self.shift, self.cfg, self.classes = truth_by_image, shift, ModelConfig(), list(CITYSCAPES_CLASSES)
        self.topk_ratio, self.input_size = 0.25, (64, 128)

    def __call__(self, rgb):
        from fornet_ros.inference import Segmentation
        gt = self.truth[rgb.tobytes()]
        lab = np.where(gt == 255, 0, (gt.astype(np.int32) + self.shift) % 19).astype(np.uint8)
        z = np.zeros(gt.shape, np.float32)
        return Segmentation(lab, z, z + 1, np.zeros(gt.shape, bool))


def test_bag_eval_perfect_and_wrong(tmp_path, cityscapes):
    root, _ = cityscapes
    from_cityscapes(root, tmp_path / "b")
    truth = {rgb.tobytes(): gt for _, _, rgb, gt in iter_frames(tmp_path / "b")}
    perfect = evaluate_bag(Oracle(truth), tmp_path / "b", progress=False)
    assert perfect["miou"] == 1.0 and perfect["images"] == perfect["scored"] == 3 and perfect["boundary_iou"] == 1.0
    wrong = evaluate_bag(Oracle(truth, shift=1), tmp_path / "b", progress=False)
    assert wrong["miou"] == 0.0 and wrong["pixel_accuracy"] == 0.0


def test_bag_eval_scores_the_costmap_the_labels_make(tmp_path, cityscapes):
    """The same projection of prediction and ground truth (the bag's CameraInfo, the written pose):
    a perfect segmenter scores cell IoU 1 with no false or missed obstacles; shifted classes miss
    every ground-truth obstacle cell. The CLI's --json carries the same numbers."""
    import json
    from fornet_ros.mapping import Pose
    root, cam = cityscapes
    info = from_cityscapes(root, tmp_path / "b")
    pose = Pose.from_list(info["camera_pose"])
    truth = {rgb.tobytes(): gt for _, _, rgb, gt in iter_frames(tmp_path / "b")}
    perfect = evaluate_bag(Oracle(truth), tmp_path / "b", progress=False, camera_pose=pose)["costmap"]
    assert perfect["frames"] == 3 and perfect["lethal"] == 100
    layers = perfect["layers"]
    assert layers["road"]["gt_cells"] > 100 and layers["combined"]["gt_cells"] > 0
    for name, r in layers.items():
        if r["gt_cells"]:
            assert r["iou"] == 1.0, name
        if r["cost"] > 0 and r["gt_cells"]:
            assert r["false_obstacle"] == 0.0 and r["missed_obstacle"] == 0.0, name
    wrong = evaluate_bag(Oracle(truth, shift=1), tmp_path / "b", progress=False, camera_pose=pose)["costmap"]
    assert wrong["layers"]["combined"]["missed_obstacle"] > 0.5 and wrong["layers"]["road"]["iou"] == 0.0
    assert evaluate_bag(Oracle(truth), tmp_path / "b", progress=False, costmap=False).get("costmap") is None
    # the CLI: --camera-pose, --json; a bad pose is one line, exit 2
    ckpt = tmp_path / "m.pt"
    import torch
    from fornet_ros.inference.checkpoint import ModelMeta, save_checkpoint
    from fornet_ros.model import create_model
    torch.manual_seed(0)
    save_checkpoint(ckpt, create_model("fornet_s"), ModelMeta.default(19, (64, 128)))
    args = [sys.executable, "-m", "fornet_ros.cli", "bag", "eval", str(tmp_path / "b"), "--checkpoint", str(ckpt),
            "--camera-pose", *map(str, info["camera_pose"])]
    p = subprocess.run(args + ["--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    cm = json.loads(p.stdout)["costmap"]
    assert set(cm["layers"]) == {"combined", "road", "sidewalk", "vehicles", "people", "static"}
    assert cm["grid"] == {"resolution": 0.1, "width": 300, "height": 300, "origin": [0.0, -15.0], "max_range": 30.0}
    assert cm["camera_pose"] == pytest.approx(info["camera_pose"]) and cm["tolerance_m"] == pytest.approx(0.3)
    p = subprocess.run(args[:-6] + ["--camera-pose", "0", "0", "nan", "0", "0", "0"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_bag_eval_of_a_model_in_other_classes_skips_the_costmap_and_says_why(tmp_path, cityscapes):
    root, _ = cityscapes
    from_cityscapes(root, tmp_path / "b")
    truth = {rgb.tobytes(): gt for _, _, rgb, gt in iter_frames(tmp_path / "b")}
    seg = Oracle(truth)
    seg.classes = [f"class{i}" for i in range(19)]  # a model of another toolbox, 19 classes of its own
    res = evaluate_bag(seg, tmp_path / "b", progress=False)
    assert res["costmap"] is None and "--costmap-config" in res["costmap_skipped"] and res["miou"] == 1.0
    layers = tmp_path / "layers.yaml"
    layers.write_text("ground_classes: [class0]\nobstacle_classes: [class13]\n"
                      "layers: [{name: ground, classes: [class0], cost: 0}, {name: x, classes: [class13], cost: 100}]\n")
    ok = evaluate_bag(seg, tmp_path / "b", progress=False, costmap_config=str(layers))["costmap"]
    assert ok["layers"]["ground"]["gt_cells"] > 100 and ok["layers"]["ground"]["iou"] == 1.0
    layers.write_text("layers: [{name: x, classes: [unicorn], cost: 100}]\n")
    from fornet_ros.mapping import GeometryError
    with pytest.raises(GeometryError, match="unknown classes"):
        evaluate_bag(seg, tmp_path / "b", progress=False, costmap_config=str(layers))


def _image_folder(root, n=3, labelled=(0, 2), size=(40, 56)):
    """n PNG frames and train-ID labels for the ``labelled`` ones; returns (images, labels) dicts by stem."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    (root / "lab").mkdir()
    images, labels = {}, {}
    for i in range(n):
        images[f"f{i}"] = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "img" / f"f{i}.png"), images[f"f{i}"][:, :, ::-1])
        if i in labelled:
            labels[f"f{i}"] = rng.choice([0, 1, 13, 255], size).astype(np.uint8)
            cv2.imwrite(str(root / "lab" / f"f{i}.png"), labels[f"f{i}"])
    return images, labels


def test_bag_export_writes_frames_and_the_labels_the_bag_has(tmp_path, capsys):
    import json

    import yaml

    from fornet_ros.cli import main
    images, labels = _image_folder(tmp_path / "src")
    from_folder(tmp_path / "src" / "img", tmp_path / "bag", labels=tmp_path / "src" / "lab", camera="front/left")
    capsys.readouterr()
    assert main(["bag", "export", str(tmp_path / "bag"), "--out", str(tmp_path / "out")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["frames"] == 3 and res["with_labels"] == 2 and res["cameras"]["front/left"]["frames"] == 3
    names = sorted(p.name for p in (tmp_path / "out" / "images" / "front_left").iterdir())
    assert names == [f"{i:06d}_{T0_NS + i * 10**8}.png" for i in range(3)]  # index, stamp (10 Hz)
    for name, (stem, rgb) in zip(names, sorted(images.items())):  # lossless, RGB order kept
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / "images" / "front_left" / name))[:, :, ::-1], rgb)
    lab_names = sorted(p.name for p in (tmp_path / "out" / "labels" / "front_left").iterdir())
    assert lab_names == [names[0], names[2]]
    for name, stem in zip(lab_names, ("f0", "f2")):
        got = cv2.imread(str(tmp_path / "out" / "labels" / "front_left" / name), cv2.IMREAD_UNCHANGED)
        assert got.dtype == np.uint8 and got.ndim == 2
        np.testing.assert_array_equal(got, labels[stem])
    mapping = yaml.safe_load((tmp_path / "out" / "classes.yaml").read_text())["mapping"]
    assert mapping == {i: i for i in range(19)}
    # a second export into the same folder would mix two bags: refused in one line
    assert main(["bag", "export", str(tmp_path / "bag"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and err.count("\n") == 1
    assert main(["bag", "export", str(tmp_path / "bag"), "--out", str(tmp_path / "o2"), "--limit", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 2
    assert len(list((tmp_path / "o2" / "images" / "front_left").iterdir())) == 2


def test_bag_export_of_the_packaged_clip(tmp_path, capsys):
    """30 frames with labels: a folder dataset (split = the camera) and images predict can read."""
    import json

    from fornet_ros.cli import main
    from fornet_ros.training.datasets import build_dataset
    assert main(["bag", "export", "clip", "--out", str(tmp_path / "clip")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["frames"] == 30 and res["with_labels"] == 30
    assert res["bag"].endswith("fornet_ros/data/clips/camvid_0006R0/bag")
    images = sorted((tmp_path / "clip" / "images" / "camera").glob("*.png"))
    assert len(images) == 30 and cv2.imread(str(images[0])).shape == (360, 480, 3)
    ds = build_dataset("folder", tmp_path / "clip", "camera")
    assert len(ds) == 30
    _, gt = ds.load(0)
    assert set(np.unique(gt)) <= set(range(19)) | {255} and (gt == 0).mean() > 0.2  # road, the most common class


@pytest.mark.parametrize("action", [["eval", "--no-costmap"], ["info"], ["export", "--out", "{tmp}/o"]])
def test_an_image_folder_is_not_a_bag(tmp_path, capsys, action):
    from fornet_ros.cli import main
    _image_folder(tmp_path / "src")
    folder = tmp_path / "src" / "img"
    args = [a.format(tmp=tmp_path) for a in action]
    assert main(["bag", args[0], str(folder), *args[1:]]) == 2
    err = capsys.readouterr().err
    assert f"{folder} is not a rosbag2 folder (no metadata.yaml); it holds images: `fornet predict {folder}" in err
    assert err.count("\n") == 1 and "Expected metadata file" not in err, err
    with pytest.raises(BagError, match=r"the bag in it is .*camvid_0006R0/bag$"):
        from fornet_ros.tools.clip import demo_clip_path
        open_reader(demo_clip_path().parent)
