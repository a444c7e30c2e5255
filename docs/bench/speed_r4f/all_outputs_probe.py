"""Probe (not a tool): what the node's extra image outputs cost inside the process at a 720x1280 camera
on the default (backend fastest): the Segmenter with labels only vs with importance and confidence,
render() of all five outputs, and their conversion to sensor_msgs/Image. Medians of 15, ms.

usage: python docs/bench/speed_r4f/all_outputs_probe.py   (results: all_outputs_probe.txt)"""
import statistics
import time

import fornet_ros  # noqa: F401 - first: it sets libgomp's spin count before torch loads libgomp
import numpy as np
import torch
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from fornet_ros.inference import Segmenter
from fornet_ros.node.pipeline import render
from fornet_ros.ros.conversions import fill_image

torch.set_num_threads(2)
seg = Segmenter.from_checkpoint(None, backend="fastest", device="cpu", log=lambda m: None)
frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)  # a 720x1280 camera frame
WANTED = {"labels", "color", "importance", "confidence", "overlay"}


def median_ms(fn, n=15):
    for _ in range(3):
        fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


r = seg([frame], outputs={"importance", "confidence"})[0]
arrays, _ = render(r, frame, WANTED, seg.palette, 0.5)
print("labels only", median_ms(lambda: seg([frame])))
print("+importance+confidence", median_ms(lambda: seg([frame], outputs={"importance", "confidence"})))
print("render all", median_ms(lambda: render(r, frame, WANTED, seg.palette, 0.5)))
print("fill_image x5", median_ms(lambda: [fill_image(Image(), a, Header(), enc) for a, enc in arrays.values()]))
