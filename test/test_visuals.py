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
    from fornet_ros.tools.costmap_images import UNKNOWN_RGB, grid_image
    from fornet_ros.tools.demo_report import md_to_html
    from fornet_ros.mapping import GridSpec, Pose
    spec = GridSpec(1.0, 4, 1, (0.0, 0.0))
    img = grid_image((np.array([[0, 50, 100, -1]], np.int8), spec), Pose(x=-100.0, z=1.0), None, scale=1, radius=0,
                     key=False)
    # x runs up the image: cells 0..3 from the bottom row to the top
    assert img[:, 0].tolist() == [list(UNKNOWN_RGB), [0, 0, 0], [128, 128, 128], [255, 255, 255]]
    html = md_to_html("## Layers\n\nA `combined` **grid** [json](s.json) <b>\n\n| a | b |\n|---|---|\n| ![](x.png) | 2 |")
    assert html == ("<h2>Layers</h2>\n<p>A <code>combined</code> <b>grid</b> <a href='s.json'>json</a> &lt;b&gt;</p>\n"
                    "<table><tr><th>a</th><th>b</th></tr><tr><td><img src='x.png' alt=''></td><td>2</td></tr></table>")


def test_legend_and_colour_bar_grow_with_the_frame():
    """A 2048-px frame's legend and colour bar read like a 640-px one's: their height grows with the
    frame (it was 22 px under a 2048x1024 frame), and the montage sizes them by the frame, not its row."""
    from fornet_ros.tools.demo_images import montage_strips
    from fornet_ros.tools.visuals import ui_scale
    small, large = legend_panel([0, 2, 5, 13], 480), legend_panel([0, 2, 5, 13], 2048)
    assert ui_scale(480) == 1.0 and ui_scale(2048) == 3.2
    assert small.shape[0] == 26 and large.shape[0] >= 3 * small.shape[0] - 4
    assert colorbar(2048, 0.1, 0.5).shape[0] == round(22 * 3.2) and colorbar(480, 0.1, 0.5).shape[0] == 22
    labels = np.array([[0, 13], [2, 5]], np.uint8)
    strips = montage_strips(labels, None, np.zeros((2, 2), np.uint8), 2048)
    assert strips[0].shape[1] == 4 * 2048 and strips[0].shape[0] == large.shape[0]  # sized by the frame
    assert strips[1].shape == (round(22 * 3.2), 2048, 3)
    assert montage_strips(labels, None, None, 480)[0].shape[0] == small.shape[0]


def test_costmap_picture_has_its_key_thick_lethal_cells_and_ticks_that_read_as_distances():
    from fornet_ros.mapping import GridSpec, Pose
    from fornet_ros.tools.costmap_images import TICK_RGB, UNKNOWN_RGB, grid_image, lethal_radius
    spec = GridSpec(0.1, 300, 300, (0.0, -15.0))
    vals = np.zeros((300, 300), np.int8)
    vals[:, :100] = -1
    vals[150, 200] = 100  # one lethal cell beside a free area
    vals[100:110, 250] = 50
    pose = Pose(x=-100.0, z=1.0)  # camera off the picture: nothing drawn over the cells
    img = grid_image((vals, spec), pose, None, scale=1)
    grid = img[:300]
    # the key under the grid: every value's colour, framed
    key = img[300:]
    assert key.shape[0] >= 18 and img.shape[1] == 300
    colours = {tuple(int(v) for v in c) for c in key.reshape(-1, 3)}
    assert {UNKNOWN_RGB, (255, 255, 255), (128, 128, 128), (0, 0, 0)} <= colours
    # the lethal cell is drawn 2r+1 cells wide (display only): r = 2 for a 300-cell grid
    r = lethal_radius(vals)
    assert r == 2
    black = np.argwhere((grid == 0).all(-1))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    assert len(black) == disc.sum() and np.ptp(black[:, 0]) == 4 and np.ptp(black[:, 1]) == 4
    thin = grid_image((vals, spec), pose, None, scale=1, radius=0, key=False)
    assert (thin == 0).all(-1).sum() == 1
    # range ticks: the distance is written above its tick, never on its row after it ("-- 10 m")
    tick = (thin == TICK_RGB).all(-1)
    rows = np.flatnonzero(tick.any(1))
    tick_rows = [r_ for r_ in rows if tick[r_].sum() == 7 and tick[r_, :7].all()]
    assert len(tick_rows) == 2  # 10 m and 20 m ahead on a 30 m grid
    for tr in tick_rows:
        assert not tick[tr, 7:].any()  # nothing after the tick on its row
        assert tick[tr - 12:tr - 1].any()  # the text just above it


def test_importance_at_k1_has_no_frame_border_outline_but_says_so():
    from fornet_ros.tools.demo_images import SELECTED_RGB, importance_view
    rgb = np.full((64, 128, 3), 100, np.uint8)
    imp = np.tile(np.linspace(0, 1, 128, dtype=np.float32), (64, 1))
    half = np.zeros((64, 128), bool)
    half[:, 64:] = True
    cyan = lambda v: (v == SELECTED_RGB).all(-1)
    some = importance_view(rgb, imp, half, bar=False)
    assert cyan(some)[:, 60:68].any()  # the outline of the selected half
    every = importance_view(rgb, imp, np.ones((64, 128), bool), bar=False)
    border = np.zeros((64, 128), bool)
    border[[0, -1]] = border[:, [0, -1]] = True
    assert not cyan(every)[border].any()  # no outline along the frame's border ...
    assert not (every == importance_view(rgb, imp, None, bar=False)).all()  # ... but the caption


def test_self_mask_is_dimmed_and_outlined():
    from fornet_ros.tools.demo_images import SELF_MASK_RGB, mark_self_mask
    view = np.full((40, 80, 3), 200, np.uint8)
    assert mark_self_mask(view, None) is view
    mask = np.zeros((40, 80), bool)
    mask[30:] = True  # the hood at the bottom of the frame
    out = mark_self_mask(view, mask)
    assert (out[35, 40] == 80).all() and (out[10, 40] == 200).all()
    assert (out == SELF_MASK_RGB).all(-1)[29:32].any()


def test_montage_without_a_grid_has_four_tiles_and_no_opencv_warning(tmp_path, capfd):
    from fornet_ros.tools.demo_images import write_montage
    tile = np.full((40, 80, 3), 100, np.uint8)
    assert write_montage(tmp_path, "frame_000", [tile, None, tile, tile], []) == "frame_000"
    m = cv2.imread(str(tmp_path / "montage.png"))
    assert m.shape == (40, 3 * 80 + 2 * 6, 3)
    assert "can't open/read file" not in capfd.readouterr().err  # no costmap_combined.png: not an error
