"""A small ONNX segmentation model "from another toolbox", built by the tests themselves.

It differs from FoR-Net in every way the description file covers: its own classes (water, grass,
crate), BGR input, NHWC layout, input 96x128, per-channel mean/std in 0..255 units (scale 1), an
output named ``scores`` at half resolution (or its arg-max, ``labels``). The class of a pixel is its
strongest channel in BGR order (a 1x1 conv with an identity weight): a pure red pixel is ``crate``
only if the node really feeds the network BGR.
"""

from __future__ import annotations

from pathlib import Path

import yaml

CLASSES = ["water", "grass", "crate"]  # channel 0, 1, 2 of the BGR input
PALETTE = [[0, 0, 255], [0, 255, 0], [255, 0, 0]]
SIZE = (96, 128)  # H, W of the graph's input
MEAN_BGR = [10.0, 20.0, 30.0]
STD_BGR = [50.0, 60.0, 70.0]
RGB_OF = {"water": (0, 0, 255), "grass": (0, 255, 0), "crate": (255, 0, 0)}  # the image colour of each class


def build(path, output: str = "logits", identity: bool = False, description: dict | None = None,
          dynamic: bool = False) -> Path:
    """Write ``path`` (.onnx) and its description (.yaml). ``output``: logits or labels;
    ``identity``: the graph returns its (NCHW-permuted) input unchanged, to check preprocessing;
    ``dynamic``: H and W of the input are dynamic too (the description then gives input_size)."""
    import torch
    from torch import nn

    class ColourNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1, bias=False)
            with torch.no_grad():
                self.conv.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1) * 4.0)
            self.pool = nn.AvgPool2d(2)

        def forward(self, x):
            x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW
            if identity:
                return x * 1.0
            y = self.pool(self.conv(x))
            return y.argmax(1, keepdim=True) if output == "labels" else y

    path = Path(path)
    name = "labels" if output == "labels" else "scores"
    torch.onnx.export(ColourNet().eval(), (torch.zeros(1, *SIZE, 3),), str(path), input_names=["bgr_image"],
                      output_names=[name], opset_version=17, dynamo=False,
                      dynamic_axes={"bgr_image": {0: "n", 1: "h", 2: "w"} if dynamic else {0: "n"},
                                    name: {0: "n", 2: "h2", 3: "w2"} if dynamic else {0: "n"}})
    desc = {"name": "colournet", "classes": CLASSES, "palette": PALETTE, "channel_order": "bgr",
            "input_layout": "nhwc", "scale": 1.0, "mean": MEAN_BGR, "std": STD_BGR, "output": output,
            "output_name": name}
    if dynamic:
        desc["input_size"] = list(SIZE)
    desc.update(description or {})
    path.with_suffix(".yaml").write_text(yaml.safe_dump(desc))
    return path


def scene(h: int = 120, w: int = 160):
    """An RGB image and its true labels: top third water (blue), a grass band (green) and a crate
    block (red) standing on it in the lower part."""
    import numpy as np
    labels = np.zeros((h, w), np.uint8)
    labels[h // 3:] = CLASSES.index("grass")
    labels[h // 2: 5 * h // 6, w // 4: w // 2] = CLASSES.index("crate")
    rgb = np.zeros((h, w, 3), np.uint8)
    for i, c in enumerate(CLASSES):
        rgb[labels == i] = RGB_OF[c]
    return rgb, labels


MASK_CLASSES = ["background", "crate"]  # a one-channel model: the probability that a pixel is crate (red)
MASK_SIZE = (64, 96)


def build_probability(path, sigmoid: bool = True, description: dict | None = None) -> Path:
    """A one-channel foreground model, as DBNet, U²-Net or smp with ``classes=1`` export it: RGB NCHW
    in 0..1, output (N, 1, h/2, w/2) = sigmoid(8 r - 8 g - 8 b - 2): pure red 0.998, black 0.12, red
    at 0.4 brightness 0.77. ``sigmoid=False``: the raw one-channel logit instead."""
    import torch
    from torch import nn

    class MaskNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 1, 1)
            with torch.no_grad():
                self.conv.weight.copy_(torch.tensor([8.0, -8.0, -8.0]).reshape(1, 3, 1, 1))
                self.conv.bias.fill_(-2.0)
            self.pool = nn.AvgPool2d(2)

        def forward(self, x):
            y = self.pool(self.conv(x))
            return torch.sigmoid(y) if sigmoid else y

    path = Path(path)
    torch.onnx.export(MaskNet().eval(), (torch.zeros(1, 3, *MASK_SIZE),), str(path), input_names=["image"],
                      output_names=["mask"], opset_version=17, dynamo=False, dynamic_axes={"image": {0: "n"},
                                                                                           "mask": {0: "n"}})
    desc = {"classes": MASK_CLASSES, "output": "probability" if sigmoid else "logits"}
    desc.update(description or {})
    path.with_suffix(".yaml").write_text(yaml.safe_dump(desc))
    return path


def build_strided(path, input_size) -> Path:
    """A stride-32 network with a skip connection and dynamic H, W: x + upsample(pool32(x)), which
    runs only where H and W are multiples of 32. Its description asks for ``input_size``."""
    import torch
    from torch import nn

    class Strided(nn.Module):
        def forward(self, x):
            return x + nn.functional.interpolate(nn.functional.avg_pool2d(x, 32), scale_factor=32.0)

    path = Path(path)
    torch.onnx.export(Strided().eval(), (torch.zeros(1, 3, 64, 64),), str(path), input_names=["image"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}})
    path.with_suffix(".yaml").write_text(yaml.safe_dump({"classes": ["a", "b", "c"], "input_size": list(input_size)}))
    return path
