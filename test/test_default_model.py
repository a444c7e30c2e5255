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
    assert ckpt["train"]["dataset"] == "camvid" and ckpt["train"]["val"]["miou"] > 0.5
    assert ckpt["train"]["exclude_drives"] == ["0006R0"]  # the hold-out drive never trained on


def test_default_segmenter_predicts_only_classes_it_was_trained_on():
    """A CamVid-trained model leaves the 8 Cityscapes classes CamVid lacks (wall, traffic light,
    terrain, truck, bus, train, motorcycle, bicycle) practically unused; random weights would not."""
    img, truth = make_scene(240, 320, seed=3)
    seg = Segmenter.from_checkpoint(device="cpu")
    r = seg(img)
    assert r.labels.shape == truth.shape and r.labels.dtype == np.uint8
    never_trained = np.isin(r.labels, [3, 6, 9, 14, 15, 16, 17, 18])
    assert never_trained.mean() < 0.01
    assert (seg(img).labels == r.labels).all()  # deterministic


def test_packaged_models_are_picked_by_name(tmp_path, monkeypatch):
    from fornet_ros.inference.checkpoint import PACKAGED, resolve_checkpoint
    assert set(PACKAGED) >= {"default", "fast"}
    for name, file in PACKAGED.items():
        assert resolve_checkpoint(name) == default_checkpoint_path(name) and default_checkpoint_path(name).name == file
        assert default_checkpoint_path(name).is_file()
    assert resolve_checkpoint(None) == resolve_checkpoint("") == default_checkpoint_path()
    assert read_checkpoint("fast")["model_config"]["variant"] == "fornet_s"  # the quick CPU model
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").write_bytes(b"")  # a file of that name wins over the packaged name
    assert resolve_checkpoint("fast") == tmp_path.joinpath("fast").relative_to(tmp_path)
