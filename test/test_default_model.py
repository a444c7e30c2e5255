"""The packaged default model: installed with the package, used when no checkpoint is given."""

import numpy as np

from fornet_ros.checkpoint import default_checkpoint_path, read_checkpoint
from fornet_ros.inference import Segmenter
from fornet_ros.synthetic import make_scene


def test_default_checkpoint_is_packaged_and_small():
    path = default_checkpoint_path()
    assert path.is_file(), path
    assert path.stat().st_size < 20 * 1024 * 1024
    ckpt = read_checkpoint(None)
    assert ckpt["model_config"]["variant"] == "fornet_s" and len(ckpt["classes"]) == 19
    assert ckpt["train"]["dataset"] == "camvid" and ckpt["train"]["val"]["miou"] > 0.3


def test_default_segmenter_segments_a_street_scene():
    img, truth = make_scene(240, 320, seed=3)
    r = Segmenter(device="cpu")(img)
    assert r.labels.shape == truth.shape
    # trained on CamVid: on our procedural scenes it must at least find sky and road somewhere
    assert 10 in np.unique(r.labels) or 0 in np.unique(r.labels)
