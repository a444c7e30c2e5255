"""The packaged default model: installed with the package, used when no checkpoint is given."""

import numpy as np

from fornet_ros.inference.checkpoint import default_checkpoint_path, read_checkpoint
from fornet_ros.inference import Segmenter
from fornet_ros.tools.synthetic import make_scene


def test_default_checkpoint_is_packaged_and_small():
    path = default_checkpoint_path()
    assert path.is_file(), path
    assert path.stat().st_size < 20 * 1024 * 1024
    ckpt = read_checkpoint(None)
    assert ckpt["model_config"]["variant"] == "mnv2_sparse" and len(ckpt["classes"]) == 19  # docs/model_card.md
    assert ckpt["input_size"] == [448, 896] and ckpt["package"]["input_size"] == [448, 896]
    train = ckpt["train"]
    # the trainer-written record: the CamVid stages it was fine-tuned from, then the streets recipes (stages 2-8 share one)
    assert [s.get("recipe") for s in train["stages"]][-8:] == ["streets.yaml"] + ["streets_long.yaml"] * 7
    assert len(train["stages"]) == 10 and train["total_iters"] == (400 + 350 + 1200 + 1800 + 800 + 3200 + 1800 + 1500
                                                                   + 1500 + 1500)
    assert train["stages"][-1]["lr"] == 3e-4 and train["stages"][-1]["precision"] == "auto"
    assert train["stages"][-1]["dtype"] == "fp32"  # auto, resolved on the CPU
    assert train["stages"][-1]["class_balance"] == 0.3
    # the shipped weights: the mean of stages 6, 7 and 8's last checkpoints (scripts/average_checkpoints.py)
    avg = ckpt["average"]
    assert [round(s["weight"], 6) for s in avg["sources"]] == [0.333333] * 3
    assert [s["file"].split("/")[-2:] for s in avg["sources"]] == [[f"streets_s{i}", "last.pt"] for i in (6, 7, 8)]
    assert ckpt["package"]["source"] == "streets_avg678.pt" and ckpt["package"]["source_sha256"] == (
        "c5636f8f33ba746ad9b9776e2dc75642112b8e2ebc9ef4548bb042dd1f0ff5f6")
    data = {d["name"]: d for d in train["datasets"]}
    assert set(data) == {"cityscapes_lowres", "cityscapes_fine", "camvid", "idd_lite"}
    # the public hold-outs were never trained on: Cityscapes val (both copies) and CamVid drive 0006R0
    assert all(d["splits"] == ["train"] for n, d in data.items() if n != "camvid")
    assert data["camvid"]["exclude_drives"] == ["0006R0"]
    assert all(d["source"] and "commit" in d["source"] for n, d in data.items() if n != "camvid")


def test_default_model_card_clip_score_is_what_the_default_scores_on_the_packaged_clip():
    """The model card's clip figure, re-scored: the packaged default on the packaged clip (CamVid
    drive 0006R0, never trained on), as `fornet bag eval clip` runs it."""
    import re
    from pathlib import Path
    from fornet_ros.tools.bag_eval import evaluate_bag
    from fornet_ros.tools.clip import LABEL_SPACE, demo_clip_path
    card = (Path(__file__).resolve().parents[1] / "docs" / "model_card.md").read_text()
    stated = re.search(r"packaged clip\*\*.{0,200}?mIoU \*\*(\d\.\d+)\*\*", card, re.S)
    assert stated, "docs/model_card.md states the default's clip mIoU as 'packaged clip ... mIoU **0.xxx**'"
    res = evaluate_bag(Segmenter.from_checkpoint(device="cpu"), demo_clip_path(), progress=False, costmap=False,
                       label_space=LABEL_SPACE)
    assert res["scored"] == 30
    assert abs(res["miou"] - float(stated.group(1))) <= 0.005, (res["miou"], stated.group(1))


def test_default_segmenter_predicts_the_classes_camvid_lacks():
    """Trained with Cityscapes and IDD-Lite beside CamVid, the default predicts classes the CamVid-only
    model never does (wall, traffic light, terrain, truck, bus, train, motorcycle, bicycle); the
    CamVid model still leaves them practically unused."""
    from fornet_ros.tools.clip import load_clip
    clip = load_clip(limit=6)
    never_in_camvid = [3, 6, 9, 14, 15, 16, 17, 18]
    for name, most in (("default", None), ("camvid", 0.01)):
        seg = Segmenter.from_checkpoint(name, device="cpu")
        labels = np.stack([seg(f).labels for f in clip.images])
        share = np.isin(labels, never_in_camvid).mean()
        if most is None:
            assert share > 0.001, share
        else:
            assert share < most, share


def test_packaged_models_are_picked_by_name(tmp_path, monkeypatch):
    from fornet_ros.inference.checkpoint import PACKAGED, resolve_checkpoint
    assert set(PACKAGED) >= {"default", "camvid", "fast"}
    for name, file in PACKAGED.items():
        assert resolve_checkpoint(name) == default_checkpoint_path(name) and default_checkpoint_path(name).name == file
        assert default_checkpoint_path(name).is_file()
    assert resolve_checkpoint(None) == resolve_checkpoint("") == default_checkpoint_path()
    assert read_checkpoint("fast")["model_config"]["variant"] == "fornet_s"  # the quick CPU model
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").write_bytes(b"")  # a file of that name wins over the packaged name
    assert resolve_checkpoint("fast") == tmp_path.joinpath("fast").relative_to(tmp_path)
