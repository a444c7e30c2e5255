"""Pictures for people: the importance colour scale and the class legend."""

import cv2
import numpy as np

from fornet_ros.classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
from fornet_ros.tools.visuals import colorbar, importance_colors, legend_panel, with_legend

INFERNO = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], cv2.COLORMAP_INFERNO)[0, :, ::-1]


def test_importance_spans_the_whole_colour_scale():
    imp = np.linspace(0.05, 0.4, 200, dtype=np.float32).reshape(10, 20)  # a trained selector's typical range
    rgb, lo, hi = importance_colors(imp)
    assert (lo, hi) == (np.float32(0.05), np.float32(0.4))
    np.testing.assert_array_equal(rgb[0, 0], INFERNO[0])  # the frame's minimum: the bottom of the map
    np.testing.assert_array_equal(rgb[-1, -1], INFERNO[255])  # its maximum: the top (was 103/255 before)
    mono8 = (imp * 255).astype(np.uint8)  # the node's importance topic
    rgb8, lo8, hi8 = importance_colors(mono8)
    np.testing.assert_array_equal(rgb8[-1, -1], INFERNO[255])
    assert abs(hi8 - 0.4) < 0.01 and abs(lo8 - 0.05) < 0.01
    flat, lo, hi = importance_colors(np.full((4, 4), 0.3, np.float32))
    assert (flat == INFERNO[0]).all() and lo == hi
    bar = colorbar(200, 0.05, 0.4)
    assert bar.shape == (22, 200, 3) and (bar[0, 0] == INFERNO[0]).all() and (bar[0, -1] == INFERNO[255]).all()


def test_legend_names_every_class_shown_with_visible_grey_swatches():
    labels = np.array([[2, 5, 255], [0, 0, 2]], np.uint8)  # building, pole, void, road
    panel = legend_panel([0, 2, 5], 400)
    colours = {tuple(int(v) for v in c) for c in panel.reshape(-1, 3)}
    for c in (0, 2, 5):
        assert tuple(CITYSCAPES_PALETTE[c]) in colours, CITYSCAPES_CLASSES[c]
    assert (panel == 0).all(-1).sum() > 50  # black frames and text
    img = np.zeros((40, 400, 3), np.uint8)
    out = with_legend(img, [labels, None])
    assert out.shape[1] == 400 and out.shape[0] == 40 + panel.shape[0]
    np.testing.assert_array_equal(out[40:], panel)  # void (255) has no entry
    narrow = legend_panel(range(19), 160)
    assert narrow.shape[0] > 5 * 18  # wraps onto several rows


def test_grid_image_tells_free_cost_and_unknown_apart_and_html_renders_markdown():
    from fornet_ros.tools.demo_images import UNKNOWN_RGB, grid_image
    from fornet_ros.tools.demo_report import md_to_html
    from fornet_ros.mapping import GridSpec, Pose
    spec = GridSpec(1.0, 4, 1, (0.0, 0.0))
    img = grid_image((np.array([[0, 50, 100, -1]], np.int8), spec), Pose(x=-100.0, z=1.0), None, scale=1)
    # x runs up the image: cells 0..3 from the bottom row to the top
    assert img[:, 0].tolist() == [list(UNKNOWN_RGB), [0, 0, 0], [128, 128, 128], [255, 255, 255]]
    html = md_to_html("## Layers\n\nA `combined` **grid** [json](s.json) <b>\n\n| a | b |\n|---|---|\n| ![](x.png) | 2 |")
    assert html == ("<h2>Layers</h2>\n<p>A <code>combined</code> <b>grid</b> <a href='s.json'>json</a> &lt;b&gt;</p>\n"
                    "<table><tr><th>a</th><th>b</th></tr><tr><td><img src='x.png' alt=''></td><td>2</td></tr></table>")
