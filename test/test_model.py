import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from fornet_ros.config import ModelConfig
from fornet_ros.losses import fornet_loss
from fornet_ros.model import VARIANTS, create_model, num_selected


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_shapes(variant):
    m = create_model(variant, num_classes=7, topk_ratio=0.3).eval()
    out = m(torch.randn(2, 3, 75, 133))
    assert out["logits"].shape == (2, 7, 10, 17)  # ceil(75/8), ceil(133/8)
    imp = out["importance"]
    assert imp.shape[:2] == (2, 1) and float(imp.min()) >= 0 and float(imp.max()) <= 1
    k = num_selected(0.3, imp[0].numel())
    assert out["selected"].flatten(1).sum(1).tolist() == [k, k]


def test_num_selected():
    assert num_selected(0.0, 10) == 0
    assert num_selected(0.01, 10) == 1
    assert num_selected(0.25, 10) == 3  # round(2.5) half up
    assert num_selected(1.0, 10) == 10


@pytest.mark.parametrize("size", [(64, 64), (75, 133), (203, 317)])
@pytest.mark.parametrize("k", [0.1, 0.25, 0.5, 1.0])
def test_dense_and_sparse_paths_agree(small_model, size, k):
    x = torch.randn(3, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        dense = small_model(x, topk_ratio=k, mode="dense")
        sparse = small_model(x, topk_ratio=k, mode="sparse")
        off = small_model(x, topk_ratio=0.0)
    assert torch.equal(dense["selected"], sparse["selected"])
    assert (dense["logits"] - sparse["logits"]).abs().max().item() <= 1e-4
    # the refinement is not a no-op: it changes the logits of the selected regions
    assert (dense["logits"] - off["logits"]).abs().max().item() > 1e-3


def test_sparse_refinement_touches_only_selected_regions(small_model):
    x = torch.randn(1, 3, 128, 256)
    with torch.no_grad():
        feats = small_model.backbone(x)
        imp = torch.sigmoid(small_model.selector(feats))
        refined, selected = small_model.refiner(feats, imp, 0.25, "sparse")
    R = small_model.cfg.region_cells
    changed = (refined - feats).abs().amax(1, keepdim=True) > 0
    region_changed = torch.nn.functional.max_pool2d(changed.float(), R)
    assert torch.equal(region_changed, selected)


def test_focus_flops_scale_with_k(small_model):
    feats = torch.randn(1, 96, 64, 128)
    imp = torch.rand(1, 1, 8, 16)
    flops = {}
    for k in (0.25, 0.5, 1.0):
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            small_model.refiner(feats, imp, k, "sparse")
        flops[k] = fc.get_total_flops()
    assert flops[0.25] / flops[1.0] == pytest.approx(0.25, rel=1e-6)
    assert flops[0.5] / flops[1.0] == pytest.approx(0.5, rel=1e-6)


def test_selector_receives_gradients():
    torch.manual_seed(0)
    m = create_model("fornet_s", num_classes=5).train()
    x = torch.randn(2, 3, 96, 128)
    y = torch.randint(0, 5, (2, 96, 128))
    y[:, :10] = 255
    loss, parts = fornet_loss(m(x), y, m.cfg)
    loss.backward()
    assert {"main", "aux", "selector"} <= set(parts)
    for name, p in m.selector.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, p in m.refiner.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_selector_gets_gradient_from_segmentation_loss_alone():
    """Soft gating: even without the hardness loss, the main loss reaches the selector."""
    torch.manual_seed(0)
    m = create_model("fornet_s", num_classes=5).train()
    out = m(torch.randn(1, 3, 96, 128))
    loss, _ = fornet_loss(out, torch.randint(0, 5, (1, 96, 128)), m.cfg, aux_weight=0, selector_weight=0)
    loss.backward()
    assert m.selector.net[-1].weight.grad.abs().sum() > 0


def test_focus_off_ablation():
    m = create_model("fornet_s", focus=False).eval()
    assert not hasattr(m, "selector")
    out = m(torch.randn(1, 3, 64, 64))
    assert out["importance"].sum() == 0 and out["logits"].shape == (1, 19, 8, 8)


def test_config_validation_and_round_trip():
    cfg = create_model("fornet_m").cfg
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="topk_ratio"):
        ModelConfig(topk_ratio=1.5)
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="unknown variant"):
        create_model("fornet_xxl")
    with pytest.raises(ValueError, match="mode"):
        create_model("fornet_s")(torch.randn(1, 3, 64, 64), mode="fast")
