"""scripts/average_checkpoints.py: a weight average of checkpoints of one model, with its record."""

import importlib.util
from pathlib import Path

import pytest
import torch

from fornet_ros.inference.checkpoint import ModelMeta, load_model, read_checkpoint, save_checkpoint
from fornet_ros.model import create_model
from fornet_ros.model.pretrained import sha256

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "average_checkpoints.py"


def _script():
    spec = importlib.util.spec_from_file_location("average_checkpoints", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ckpt(path, seed, variant="fornet_s"):
    torch.manual_seed(seed)
    model = create_model(variant, topk_ratio=0.25)
    for m in model.modules():  # running statistics that differ between the two
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.num_batches_tracked.fill_(seed)
    return save_checkpoint(path, model, ModelMeta.default(19, (64, 96)))


def test_average_is_the_weighted_mean_and_records_its_sources(tmp_path):
    a, b = _ckpt(tmp_path / "a.pt", 1), _ckpt(tmp_path / "b.pt", 2)
    out = tmp_path / "avg.pt"
    assert _script().main([str(a), str(b), "--weights", "0.25", "0.75", "--out", str(out)]) == 0
    sa, sb, so = (read_checkpoint(p)["state_dict"] for p in (a, b, out))
    for name, t in so.items():
        if t.is_floating_point():
            torch.testing.assert_close(t, 0.25 * sa[name] + 0.75 * sb[name], rtol=0, atol=1e-6)
        else:  # batch counters: the last checkpoint's
            assert torch.equal(t, sb[name])
    rec = read_checkpoint(out)["average"]
    assert [s["weight"] for s in rec["sources"]] == [0.25, 0.75]
    assert [s["sha256"] for s in rec["sources"]] == [sha256(a), sha256(b)]
    assert rec["command"].startswith("python scripts/average_checkpoints.py ") and "--weights 0.25 0.75" in rec["command"]
    model, _ = load_model(out)  # a checkpoint like any other
    assert model(torch.randn(1, 3, 64, 96))["logits"].shape[1] == 19


def test_average_refuses_other_models_and_bad_weights(tmp_path, capsys):
    a, b = _ckpt(tmp_path / "a.pt", 1), _ckpt(tmp_path / "b.pt", 2, variant="mnv2_sparse")
    with pytest.raises(SystemExit, match="another model config"):
        _script().main([str(a), str(b), "--out", str(tmp_path / "x.pt")])
    with pytest.raises(SystemExit):
        _script().main([str(a), str(a), "--weights", "0.5", "0.6", "--out", str(tmp_path / "x.pt")])
    assert "summing to 1" in capsys.readouterr().err
