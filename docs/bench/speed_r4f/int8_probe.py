"""Probe: int8 calibration variants, judged by label agreement with fp32 on training frames that
were not used for calibration (no hold-out involved)."""
import sys, time
from pathlib import Path
import cv2, numpy as np, onnx, onnxruntime as ort
sys.path.insert(0, "/work/main")
from fornet_ros.inference import Segmenter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static, CalibrationMethod
from onnxruntime.quantization.shape_inference import quant_pre_process

F32 = "/tmp/int8_s6/fornet_mnv2_streets.237238d23fb49ccc.448x896.k1.dense.onnx"
folders = ["/work/data/cityscapes_fine/leftImg8bit/train", "/work/data/cityscapes_lowres/images/train", "/work/data/camvid/train"]
seg = Segmenter.from_checkpoint(None, device="cpu")
def pick(offset, per, step_per=11):
    out = []
    for f in folders:
        found = sorted(x for e in ("*.png", "*.jpg") for x in Path(f).rglob(e) if not x.name.startswith("0006R0"))
        step = max(1, len(found) // step_per)
        out += found[offset::step][:per]
    return out
calib_files, agree_files = pick(0, 11), pick(4, 10)
assert not set(calib_files) & set(agree_files)
load = lambda fs: seg.preprocess([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in fs])
calib, agree = load(calib_files), load(agree_files)
opts = ort.SessionOptions(); opts.intra_op_num_threads = 2
def labels(path):
    s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.stack([s.run(None, {name: agree[i:i+1]})[0].argmax(1)[0] for i in range(len(agree))])
ref = labels(F32)
m = onnx.load(F32)
out_names = [o.name for o in m.graph.output]
last = [n.name for n in m.graph.node if any(o in out_names for o in n.output) and n.op_type in ("Conv", "Add", "Resize")]
print("outputs", out_names, "nodes making outputs", last, flush=True)
class Frames(CalibrationDataReader):
    def __init__(self): self.it = iter(calib)
    def get_next(self):
        x = next(self.it, None); return None if x is None else {"image": np.ascontiguousarray(x[None], np.float32)}
pre = "/tmp/int8_probe.pre.onnx"
quant_pre_process(F32, pre, skip_symbolic_shape=True)
last = ["/model/head/head.1/Conv", "/model/Resize", "/model/refiner/classifier/Conv", "/model/refiner/Mul_4", "/model/refiner/Add_3"]
first = [n.name for n in m.graph.node if n.op_type == "Conv"][:1]
variants = {"minmax": {}, "minmax_classifiers_fp32": {"nodes_to_exclude": last},
            "minmax_first_and_classifiers_fp32": {"nodes_to_exclude": first + last}}
for name, kw in variants.items():
    t = time.time(); out = f"/tmp/int8_probe_{name}.onnx"
    try:
        quantize_static(pre, out, Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, **kw)
    except Exception as e:
        print(name, "failed", e, flush=True); continue
    lab = labels(out)
    print(name, "agreement %.4f" % (lab == ref).mean(), "per-frame min %.4f" % min((lab[i] == ref[i]).mean() for i in range(len(ref))), "%.0f s" % (time.time() - t), flush=True)
