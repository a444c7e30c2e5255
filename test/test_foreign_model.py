"""Bring your own ONNX model (issue #23.2): a model another toolbox exported, with its description
YAML beside it, runs the Segmenter, `fornet predict`, `fornet eval`, and (test_foreign_node.py)
the node over DDS. The model is built here (foreign_onnx.py): other classes, BGR, NHWC, 96x128."""

import json

import cv2
import numpy as np
import pytest
import yaml

import foreign_onnx as F
from fornet_ros.inference.checkpoint import CheckpointError
from fornet_ros.inference import Segmenter
from fornet_ros.inference.model_description import parse_description


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("foreign")
    return {kind: F.build(d / f"{kind}.onnx", **kw) for kind, kw in
            {"logits": {}, "labels": {"output": "labels"}, "identity": {"identity": True}}.items()}


def test_preprocessing_is_the_descriptions_exactly(models):
    """The graph returns its input: what reaches the network is (BGR pixel x scale - mean) / std in
    NHWC, per channel in the network's order."""
    seg = Segmenter.from_checkpoint(models["identity"], device="cpu")
    img = np.random.default_rng(0).integers(0, 256, (*F.SIZE, 3)).astype(np.uint8)
    fed = seg.runner(seg.preprocess([img]), seg.topk_ratio)[0][0]
    want = ((img[..., ::-1].astype(np.float32) - F.MEAN_BGR) / F.STD_BGR).transpose(2, 0, 1)
    np.testing.assert_allclose(fed, want, atol=1e-5)


def test_segmenter_runs_the_foreign_model_with_its_classes(models):
    seg = Segmenter.from_checkpoint(models["logits"], device="cpu")
    assert seg.classes == F.CLASSES and seg.palette == [tuple(c) for c in F.PALETTE]
    assert seg.input_size == F.SIZE and seg.backend == "onnxruntime" and seg.cfg.variant == "colournet"
    assert seg.topk_ratio == 1.0 and not seg.cfg.focus
    rgb, truth = F.scene()  # 120x160: resized to the graph's 96x128 and back
    r = seg(rgb)
    assert r.labels.shape == truth.shape and (r.labels == truth).mean() > 0.98
    assert r.importance is None and r.selected is None  # no Top-K regions in a foreign model
    assert r.confidence.shape == truth.shape and r.confidence.min() > 0.9  # pure colours: confident
    with pytest.raises(ValueError, match="not a FoR-Net model"):
        seg.topk_ratio = 0.25
    with pytest.raises(ValueError, match="fixed to input"):
        Segmenter.from_checkpoint(models["logits"], device="cpu", input_size=(64, 64))


@pytest.mark.parametrize("resize_mode", ["stretch", "letterbox"])
def test_a_labels_output_gives_the_same_labels_and_no_confidence(models, resize_mode):
    rgb, truth = F.scene(100, 200)  # another aspect ratio than the graph's: letterbox pads
    kw = dict(device="cpu", resize_mode=resize_mode)
    a = Segmenter.from_checkpoint(models["logits"], **kw)([rgb, rgb[::-1].copy()])
    b = Segmenter.from_checkpoint(models["labels"], **kw)([rgb, rgb[::-1].copy()])
    for x, y, t in zip(a, b, (truth, truth[::-1])):
        assert x.labels.shape == y.labels.shape == t.shape
        # a labels output at half resolution places boundaries to 2 network pixels (3 image rows here)
        assert (x.labels == y.labels).mean() > 0.96 and (y.labels == t).mean() > 0.96
        assert y.confidence is None and y.importance is None


def test_a_graph_with_dynamic_size_runs_at_any_input_size(tmp_path):
    path = F.build(tmp_path / "d.onnx", dynamic=True)
    rgb, truth = F.scene()
    assert Segmenter.from_checkpoint(path, device="cpu").input_size == F.SIZE  # the description's
    seg = Segmenter.from_checkpoint(path, device="cpu", input_size=(64, 80))
    assert seg.input_size == (64, 80) and (seg(rgb).labels == truth).mean() > 0.97
    d = yaml.safe_load(path.with_suffix(".yaml").read_text())
    del d["input_size"]
    path.with_suffix(".yaml").write_text(yaml.safe_dump(d))
    with pytest.raises(CheckpointError, match="not fixed.*set input_size"):
        Segmenter.from_checkpoint(path, device="cpu")


def test_channel_order_matters(models, tmp_path):
    """The same graph described as RGB sees red as channel 0 (water): wrong, as it should be."""
    path = F.build(tmp_path / "m.onnx", description={"channel_order": "rgb"})
    rgb, truth = F.scene()
    labels = Segmenter.from_checkpoint(path, device="cpu")(rgb).labels
    crate = truth == F.CLASSES.index("crate")
    assert (labels[crate] == F.CLASSES.index("water")).mean() > 0.9


def test_description_normalisation_and_defaults():
    d = parse_description({"classes": ["a", "b"], "channel_order": "BGR", "scale": 1.0,
                           "mean": [103.53, 116.28, 123.675], "std": [57.375, 57.12, 58.395],
                           "input_size": [64, 80]}, "m")
    # stored like FoR-Net's: RGB order, 0..1 units of the 0..255 pixel
    np.testing.assert_allclose(d.meta.mean, np.array([123.675, 116.28, 103.53]) / 255)
    np.testing.assert_allclose(d.meta.std, np.array([58.395, 57.12, 57.375]) / 255)
    assert d.meta.input_size == (64, 80) and d.io.channel_order == "bgr" and d.name == "m"
    assert len(d.meta.palette) == 2 and d.io.output == "logits" and d.io.input_layout == "nchw"
    smp = parse_description({"classes": ["a", "b"], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})
    np.testing.assert_allclose(smp.meta.mean, [0.485, 0.456, 0.406])  # default scale 1/255: same units


@pytest.mark.parametrize("change,words", [
    ({"chanel_order": "bgr"}, ["unknown keys", "chanel_order"]),
    ({"classes": []}, ["classes"]),
    ({"classes": ["a", "a", "b"]}, ["distinct"]),
    ({"palette": [[1, 2, 3]]}, ["palette"]),
    ({"channel_order": "grb"}, ["channel_order"]),
    ({"std": [1.0, 0.0, 1.0]}, ["std"]),
    ({"input_size": [4, 4]}, ["input_size"]),
    ({"output": "probabilities"}, ["output"]),
    ({"classes": ["road"]}, ["one class with output: logits", "output: probability", "[background, <name>]"]),
    ({"output": "probability"}, ["output: probability needs classes: [background, <name>]", "got 3"]),
    ({"classes": ["bg", "crate"], "output": "probability", "threshold": 1.0}, ["threshold", "(0, 1)"]),
    ({"threshold": 0.3}, ["threshold applies to output: probability only"]),
])
def test_description_errors_name_the_problem(change, words):
    d = {"classes": ["a", "b", "c"], **change}
    with pytest.raises(ValueError) as e:
        parse_description(d)
    assert all(w in str(e.value) for w in words) and "\n" not in str(e.value)


@pytest.mark.parametrize("change,words", [
    (None, ["no fornet_ros metadata", "no model description", ".yaml"]),
    ({"classes": ["a", "b", "c", "d"], "palette": None}, ["3 channels", "4 classes"]),
    ({"input_size": [64, 64]}, ["input_size", "[96, 128]"]),
    ({"output_name": "out"}, ["no output named 'out'", "scores"]),
    ({"input_layout": "nchw"}, ["96 channels", "input_layout"]),
])
def test_a_graph_that_contradicts_its_description_is_a_clear_error(tmp_path, change, words):
    path = F.build(tmp_path / "m.onnx")
    if change is None:
        path.with_suffix(".yaml").unlink()
    else:
        d = yaml.safe_load(path.with_suffix(".yaml").read_text())
        d.update({k: v for k, v in change.items() if v is not None})
        d.pop("palette") if "palette" in change else None
        path.with_suffix(".yaml").write_text(yaml.safe_dump(d))
    with pytest.raises(CheckpointError) as e:
        Segmenter.from_checkpoint(path, device="cpu")
    assert all(w in str(e.value) for w in words), str(e.value)


def test_fornet_predict_with_a_foreign_model(models, tmp_path, capsys):
    from fornet_ros.cli import main
    rgb, truth = F.scene()
    cv2.imwrite(str(tmp_path / "scene.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert main(["predict", str(tmp_path / "scene.png"), "--checkpoint", str(models["labels"]),
                 "--out", str(tmp_path / "out"), "--alpha", "1.0"]) == 0
    labels = cv2.imread(str(tmp_path / "out" / "scene_labels.png"), cv2.IMREAD_UNCHANGED)
    assert (labels == truth).mean() > 0.98
    color = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "scene_color.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(color, np.asarray(F.PALETTE, np.uint8)[labels])  # the description's palette
    assert not (tmp_path / "out" / "scene_importance.png").exists()


def _folder_dataset(root, classes_yaml: dict, n: int = 3):
    for sub in ("images/val", "labels/val"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        rgb, truth = F.scene(120 + 8 * i, 160)
        cv2.imwrite(str(root / "images/val" / f"f{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "labels/val" / f"f{i}.png"), truth)
    (root / "classes.yaml").write_text(yaml.safe_dump(classes_yaml))
    return root


def test_fornet_eval_with_a_foreign_model_on_a_dataset_in_its_classes(models, tmp_path, capsys):
    from fornet_ros.cli import main
    root = _folder_dataset(tmp_path / "ds", {"classes": F.CLASSES})
    assert main(["eval", "--dataset", "folder", "--data-root", str(root), "--checkpoint", str(models["logits"]),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["scored"] == 3 and res["variant"] == "colournet" and set(res["per_class_iou"]) == set(F.CLASSES)
    assert res["miou"] > 0.95 and res["input_size"] == list(F.SIZE)


def test_fornet_eval_refuses_a_dataset_in_other_classes(models, tmp_path, capsys):
    """Cityscapes train IDs (the default folder mapping) against a water/grass/crate model: the IDs
    mean different things, so the score would be silently wrong."""
    from fornet_ros.cli import main
    root = _folder_dataset(tmp_path / "ds", {"mapping": {0: 0, 1: 1, 2: 2}})
    assert main(["eval", "--dataset", "folder", "--data-root", str(root), "--checkpoint", str(models["logits"])]) == 2
    err = capsys.readouterr().err.strip()
    assert "model's classes ['water', 'grass', 'crate'] are not the dataset's" in err and "\n" not in err


def test_layer_config_names_the_models_classes():
    from fornet_ros.mapping import GeometryError, LayerConfig
    cfg = LayerConfig.from_dict({"ground_classes": ["grass"], "obstacle_classes": ["crate"],
                                 "layers": [{"name": "crates", "classes": ["crate"], "cost": 100}]}, F.CLASSES)
    assert cfg.obstacle_ids == (2,) and cfg.unnamed(F.CLASSES) == ["water"]
    with pytest.raises(GeometryError, match=r"unknown classes \['road'\]"):
        LayerConfig.from_dict({"layers": [{"name": "road", "classes": ["road"], "cost": 0}]}, F.CLASSES)


def test_fornet_info_and_bench_segmenter_with_a_foreign_model(models, capsys):
    from fornet_ros.cli import main
    assert main(["info", "--checkpoint", str(models["logits"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["classes"] == F.CLASSES and info["input_size"] == list(F.SIZE) and info["variant"] == "colournet"
    assert info["io"]["channel_order"] == "bgr" and info["io"]["input_layout"] == "nhwc" and info["graph"] == "foreign"
    assert main(["bench-segmenter", "--checkpoint", str(models["logits"]), "--image-size", "120", "160",
                 "--runs", "2"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["input_size"] == list(F.SIZE) and res["segmenter_ms_median"] > 0


def test_the_demo_refuses_a_model_it_cannot_score(models, tmp_path):
    """The demo's ground truth is Cityscapes train IDs; a water/grass/crate model is refused before
    anything starts (a FoR-Net export or .pt passes)."""
    from fornet_ros.errors import FornetError
    from fornet_ros.tools.demo_input import check_demo_classes as _check_demo_classes
    with pytest.raises(FornetError, match=r"own classes \['water', 'grass', 'crate'\]"):
        _check_demo_classes(str(models["logits"]))
    _check_demo_classes(None)
    _check_demo_classes(str(tmp_path / "m.pt"))


def _mask_scene():
    """A 64x96 image: the right half pure red (p 0.998), a dark red block top left (p 0.77), the rest black (p 0.12)."""
    img = np.zeros((*F.MASK_SIZE, 3), np.uint8)
    img[:, 48:] = (255, 0, 0)
    img[:32, :24] = (102, 0, 0)
    return img


def test_a_one_channel_probability_output_is_thresholded(tmp_path):
    """DBNet / U²-Net / smp classes=1: (N, 1, h, w) after a sigmoid, classes [background, crate]."""
    img = _mask_scene()
    seg = Segmenter.from_checkpoint(F.build_probability(tmp_path / "m.onnx"), device="cpu")
    assert seg.classes == F.MASK_CLASSES
    r = seg(img)
    assert (r.labels[:, 50:] == 1).all() and (r.labels[40:, :40] == 0).all() and (r.labels[:28, :20] == 1).all()
    # confidence max(p, 1 - p) at the default threshold 0.5: the sigmoids of 6, -2 and 1.2
    np.testing.assert_allclose([r.confidence[10, 80], r.confidence[50, 10], r.confidence[10, 10]],
                               [1 / (1 + np.exp(-6)), 1 / (1 + np.exp(-2)), 1 / (1 + np.exp(-1.2))], atol=2e-3)
    strict = Segmenter.from_checkpoint(F.build_probability(tmp_path / "t.onnx", description={"threshold": 0.9}),
                                       device="cpu")(img).labels
    assert (strict[:, 50:] == 1).all() and (strict[:28, :20] == 0).all()  # p 0.77 < 0.9: background now


def test_fornet_predict_with_a_probability_model(tmp_path, capsys):
    from fornet_ros.cli import main
    cv2.imwrite(str(tmp_path / "img.png"), cv2.cvtColor(_mask_scene(), cv2.COLOR_RGB2BGR))
    assert main(["predict", str(tmp_path / "img.png"), "--checkpoint", str(F.build_probability(tmp_path / "m.onnx")),
                 "--out", str(tmp_path / "out")]) == 0
    labels = cv2.imread(str(tmp_path / "out" / "img_labels.png"), cv2.IMREAD_UNCHANGED)
    assert (labels[:, 50:] == 1).all() and (labels[40:, :40] == 0).all() and 0.5 < labels.mean() < 0.7


def test_a_one_channel_logits_output_is_refused_in_one_line(tmp_path, capsys):
    from fornet_ros.cli import main
    path = F.build_probability(tmp_path / "m.onnx", sigmoid=False)  # two classes described, one channel out
    with pytest.raises(CheckpointError, match=r"output 'mask' has shape \['n', 1, 32, 48\]: one channel; a one-channel "
                       r"output needs output: probability"):
        Segmenter.from_checkpoint(path, device="cpu")
    cv2.imwrite(str(tmp_path / "img.png"), _mask_scene())
    assert main(["predict", str(tmp_path / "img.png"), "--checkpoint", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "one-channel output needs output: probability" in err


def test_a_graph_that_rejects_its_input_size_fails_at_load_in_one_line(tmp_path, capsys):
    """A stride-32 network described with 360 rows: one line at load naming the size, not an
    onnxruntime traceback at the first frame; at 352 rows it runs."""
    from fornet_ros.cli import main
    path = F.build_strided(tmp_path / "s.onnx", (360, 480))
    with pytest.raises(CheckpointError, match=r"the graph rejected input size 360x480 .*352 by 360"):
        Segmenter.from_checkpoint(path, device="cpu")
    cv2.imwrite(str(tmp_path / "img.png"), _mask_scene())
    assert main(["predict", str(tmp_path / "img.png"), "--checkpoint", str(path), "--out", str(tmp_path / "o")]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "the graph rejected input size 360x480" in err and "Traceback" not in err, err
    ok = F.build_strided(tmp_path / "ok.onnx", (352, 480))
    assert Segmenter.from_checkpoint(ok, device="cpu")(_mask_scene()).labels.shape == F.MASK_SIZE
    # a size asked for (a dynamic graph takes --input-size): refused at load too, naming that size
    with pytest.raises(CheckpointError, match=r"the graph rejected input size 100x480 "):
        Segmenter.from_checkpoint(ok, device="cpu", input_size=(100, 480))
    assert main(["predict", str(tmp_path / "img.png"), "--checkpoint", str(ok), "--input-size", "100", "480",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the graph rejected input size 100x480" in err, err
