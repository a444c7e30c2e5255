"""The demo's camera self mask: passed to the node as its per-camera parameter, drawn in the report."""

import numpy as np

from fornet_ros.cli import main as cli
from fornet_ros.mapping.self_mask import SelfMask
from fornet_ros.ros.demo import _node_params
from fornet_ros.tools.demo_images import mark_self_mask
from fornet_ros.tools.demo_input import DemoInput


def test_demo_passes_the_self_mask_to_the_node_and_draws_it():
    src = DemoInput(bag="b", camera="front", compressed=False, pose=None, description="x")
    assert not any(p.startswith("self_mask_rows") for p in _node_params(src, None, False, None))
    src.self_mask_rows = 228
    assert "self_mask_rows.front:=228" in _node_params(src, None, False, None)
    mask = SelfMask(rows=src.self_mask_rows).pixels((1024, 2048, 3))
    assert mask[-228:].all() and not mask[:-228].any()
    view = np.full((1024, 2048, 3), 128, np.uint8)
    drawn = mark_self_mask(view.copy(), mask)
    assert (drawn[-100:] != 128).any() and (drawn[:500] == 128).all()  # only the masked rows change


def test_demo_refuses_a_negative_self_mask(capsys):
    assert cli(["demo", "--self-mask-rows", "-3", "--out", "/tmp/never"]) == 2
    assert "--self-mask-rows must be >= 0" in capsys.readouterr().err
