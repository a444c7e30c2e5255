"""Probe (not a tool): what the node's extra image outputs cost inside the process at a 720x1280 camera
on the default (backend fastest): the Segmenter with labels only vs with importance and confidence,
render() of all five outputs, and their conversion to sensor_msgs/Image. Medians of 15, ms."""
import fornet_ros, time, statistics, numpy as np, cv2
from fornet_ros.inference import Segmenter
from fornet_ros.node.pipeline import render
import torch; torch.set_num_threads(2)
seg = Segmenter.from_checkpoint(None, backend="fastest", device="cpu", log=lambda m: None)
frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)  # a 720x1280 camera frame
def t(fn, n=15):
    for _ in range(3): fn()
    ts=[]
    for _ in range(n):
        a=time.perf_counter(); fn(); ts.append((time.perf_counter()-a)*1e3)
    return statistics.median(ts)
print('labels only', t(lambda: seg([frame])))
print('+importance+confidence', t(lambda: seg([frame], outputs={"importance","confidence"})))
r = seg([frame], outputs={"importance","confidence"})[0]
wanted = {"labels","color","importance","confidence","overlay"}
print('render all', t(lambda: render(r, frame, wanted, seg.palette, 0.5)))
from fornet_ros.ros.conversions import fill_image
from sensor_msgs.msg import Image
from std_msgs.msg import Header
arrays,_ = render(r, frame, wanted, seg.palette, 0.5)
print('fill_image x5', t(lambda: [fill_image(Image(), a, Header(), enc) for a, enc in arrays.values()]))
