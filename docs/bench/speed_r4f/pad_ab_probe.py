"""Probe (not a tool): the default's ONNX Runtime network unpadded vs padded (FoRNet.pad_focus_channels) vs
DDRNet-23-slim, one process, three rounds of 15 back-to-back runs per graph and size.
usage: python docs/bench/speed_r4f/pad_ab_probe.py 384x768 448x896 360x480 512x1024"""
import sys, time, warnings, copy
import numpy as np, torch, onnxruntime as ort
from fornet_ros.inference.checkpoint import load_model
from fornet_ros.inference.runtime import session_options
from fornet_ros.tools.bench import _Network
from fornet_ros.model import create_model
warnings.simplefilter("ignore"); torch.set_num_threads(2)
m0, meta = load_model(None)  # the packaged default
m0.eval()
m1 = copy.deepcopy(m0); m1.pad_focus_channels(16)
dd = create_model('ddrnet23_slim').eval()
def timeit(f, n=15):
    for _ in range(3): f()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append((time.perf_counter() - t) * 1e3)
    return np.median(ts)
for H, W in [tuple(map(int, s.split('x'))) for s in sys.argv[1:]]:
    x = torch.randn(1, 3, H, W); sess = {}
    for name, m, k in (('orig', m0, 1.0), ('pad', m1, 1.0), ('ddrnet', dd, 0.0)):
        path = f'/tmp/pad_ab_{name}_{H}.onnx'
        with torch.inference_mode():
            torch.onnx.export(_Network(m, k, 'dense'), (x,), path, input_names=['in0'], opset_version=17, dynamo=False)
        sess[name] = ort.InferenceSession(path, session_options(2), providers=['CPUExecutionProvider'])
    feed = {'in0': x.numpy()}
    for rep in range(3):
        t = {n: timeit(lambda: s.run(None, feed)) for n, s in sess.items()}
        print(f'{H}x{W} rep{rep}: ' + '  '.join(f'{n} {v:.1f}' for n, v in t.items()) + f'   pad/orig {t["pad"]/t["orig"]:.3f} pad/ddr {t["pad"]/t["ddrnet"]:.3f}', flush=True)
