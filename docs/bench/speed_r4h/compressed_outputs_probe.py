"""Probe (not a tool): would the node's image outputs cost less as image_transport-style
CompressedImage (JPEG for colour/overlay, PNG for the mono8 maps, whose labels must stay exact)
than as raw images over DDS? Encoding time (OpenCV, one thread, median of 20) and bytes per
720x1280 output, from a synthetic street scene; compare with the transport floor of
`fornet bench-node` (docs/benchmarks.md, session 8: ~15 ms for five raw 720x1280 images).

    python docs/bench/speed_r4h/compressed_outputs_probe.py > docs/bench/speed_r4h/compressed_outputs_probe.txt
"""
import statistics
import time

import cv2
import numpy as np

from fornet_ros.classes import CITYSCAPES_PALETTE
from fornet_ros.tools.synthetic import make_scene

cv2.setNumThreads(1)
rgb, labels = make_scene(720, 1280, seed=0)
labels = labels.astype(np.uint8)
color = np.asarray(CITYSCAPES_PALETTE, np.uint8)[labels % len(CITYSCAPES_PALETTE)]
overlay = cv2.addWeighted(rgb, 0.5, color, 0.5, 0.0)
# a confidence-like map: high inside regions, dropping at label edges (smooth, as the model's)
edges = cv2.Canny(labels * 10, 1, 1)
confidence = (255 - cv2.GaussianBlur(edges, (0, 0), 4) * 4).clip(0, 255).astype(np.uint8)


def timed(fn, n=20):
    fn()
    runs = []
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        runs.append((time.perf_counter() - t) * 1e3)
    return statistics.median(runs), len(out[1])


rows = [("labels", labels, ".png", [cv2.IMWRITE_PNG_COMPRESSION, 3]),
        ("confidence", confidence, ".png", [cv2.IMWRITE_PNG_COMPRESSION, 3]),
        ("color", color[..., ::-1], ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]),
        ("overlay", overlay[..., ::-1], ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95])]
print("output      raw MB  encoded KB  encode ms (median of 20, 1 thread)")
total = 0.0
for name, arr, ext, opts in rows:
    ms, n = timed(lambda: cv2.imencode(ext, arr, opts))
    total += ms
    print(f"{name:<11} {arr.nbytes / 2**20:6.2f}  {n / 1024:10.1f}  {ms:6.1f}  ({ext[1:]} {opts[1]})")
print(f"four outputs: {total:.1f} ms to encode (importance is encoded as confidence is)")
