"""Probe (not a tool): what the node's extra image outputs cost inside the process at a 720x1280 camera
on the default (backend fastest): the Segmenter with labels only vs with importance and confidence,
render() of all five outputs, and their conversion to sensor_msgs/Image. Medians of 15, ms.

usage: python docs/bench/speed_r4f/all_outputs_probe.py   (results: all_outputs_probe.txt)"""
import fornet_ros  # noqa: F401 - first: it sets libgomp's spin count before torch loads libgomp
import numpy as np
import torch
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fornet_ros.inference import Segmenter
from fornet_ros.inference.path_choice import median_ms
from fornet_ros.node.pipeline import render
from fornet_ros.ros.conversions import fill_image

torch.set_num_threads(2)
seg = Segmenter.from_checkpoint(None, backend="fastest", device="cpu", log=lambda m: None)
frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)  # a 720x1280 camera frame
WANTED = {"labels", "color", "importance", "confidence", "overlay"}


def timed(fn, runs=15):  # three warm calls (median_ms makes the third), then the median of 15
    fn()
    fn()
    return median_ms(fn, runs)


r = seg([frame], outputs={"importance", "confidence"})[0]
arrays, _ = render(r, frame, WANTED, seg.palette, 0.5)
print("labels only", timed(lambda: seg([frame])))
print("+importance+confidence", timed(lambda: seg([frame], outputs={"importance", "confidence"})))
print("render all", timed(lambda: render(r, frame, WANTED, seg.palette, 0.5)))
print("fill_image x5", timed(lambda: [fill_image(Image(), a, Header(), enc) for a, enc in arrays.values()]))
