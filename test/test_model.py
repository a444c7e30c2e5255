"""The model battery, run over every registered variant plus the focus-off build (timm/smp style)."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from fornet_ros.inference.checkpoint import ModelMeta, load_model, save_checkpoint
from fornet_ros.config import ModelConfig
from fornet_ros.training.losses import fornet_loss, region_error_target
from fornet_ros.model import VARIANTS, create_model, num_selected, variant_config
from fornet_ros.model.focus import RegionIndex

# r101_paper (42 M parameters) gets its own shape test below; every other variant the whole battery
BUILDS = [(v, {}) for v in sorted(VARIANTS) if v != "r101_paper"] + [
    ("fornet_s", {"focus": False}), ("fornet_s", {"refine_stride": 2}), ("fornet_s", {"region_px": 16})]
IDS = [v + "".join(f"-{k}={w}" for k, w in kw.items()) for v, kw in BUILDS]
_CFG = {i: variant_config(v, **kw) for (v, kw), i in zip(BUILDS, IDS)}
FOCUS_BUILDS = [(v, kw) for (v, kw), i in zip(BUILDS, IDS) if _CFG[i].focus and _CFG[i].head == "sparse"]
FOCUS_IDS = [i for (v, kw), i in zip(BUILDS, IDS) if (v, kw) in FOCUS_BUILDS]


def _model(variant, kw, seed=0):
    """A model whose selector spreads its scores and whose (zero-initialised) classifier is
    non-zero, so that the focus stage does something measurable."""
    torch.manual_seed(seed)
    m = create_model(variant, num_classes=7, topk_ratio=0.3, **kw).eval()
    if m.cfg.focus and m.cfg.head == "paper":
        with torch.no_grad():
            m.paper.selector[1].weight.normal_(0, 2.0)
    elif m.cfg.focus:
        with torch.no_grad():
            m.selector.net[-1].weight.normal_(0, 2.0)
            m.refiner.branches.classifier.weight.normal_(0, 0.1)
    return m


@pytest.mark.parametrize("variant,kw", BUILDS, ids=IDS)
def test_shapes_any_size_and_batch(variant, kw):
    m = _model(variant, kw)
    with torch.no_grad():
        out = m(torch.randn(2, 3, 75, 133))
    s = m.output_stride
    assert s == (4 if m.cfg.head != "sparse" or m.cfg.focus and m.cfg.refine_stride == 4 else
                 2 if m.cfg.focus else 8) or m.cfg.arch == "ddrnet"
    assert out["logits"].shape == (2, 7, -(-75 // s), -(-133 // s))
    if m.cfg.arch == "fornet":  # DDRNet's auxiliary head runs only while training
        assert out["coarse"].shape == (2, 7, 10, 17)  # ceil(75/8), ceil(133/8)
    P = m.cfg.region_px
    assert out["importance"].shape == out["selected"].shape == (2, 1, -(-75 // P), -(-133 // P))
    imp = out["importance"]
    assert float(imp.min()) >= 0 and float(imp.max()) <= 1
    if m.cfg.focus:
        k = num_selected(0.3, imp[0].numel())
        assert out["selected"].flatten(1).sum(1).tolist() == [k, k]
    else:
        assert imp.abs().sum() == 0 and out["selected"].sum() == 0


@pytest.mark.parametrize("variant,kw", BUILDS, ids=IDS)
def test_forward_backward_reaches_every_parameter(variant, kw):
    m = create_model(variant, num_classes=5, **kw).train()
    x = torch.randn(2, 3, 96, 128)
    y = torch.randint(0, 5, (2, 96, 128))
    y[:, :10] = 255
    loss, parts = fornet_loss(m(x), y, m.cfg)
    loss.backward()
    assert torch.isfinite(loss) and {"main", "aux"} <= set(parts)
    assert ("selector" in parts) == m.cfg.focus
    # the zero-initialised focus classifier blocks gradient to what feeds it (the branches and the
    # context projection) at step 0 only; one optimiser step later everything learns
    def starved():
        return sorted(n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0)
    expected = sorted(n for n, _ in m.named_parameters()
                      if (n.startswith("refiner.branches.") and "classifier" not in n) or n.startswith("context."))
    # the paper and plain heads have no zero-initialised layer: every parameter learns from step 0
    assert starved() == expected
    torch.optim.SGD(m.parameters(), lr=0.1).step()
    m.zero_grad()
    fornet_loss(m(x), y, m.cfg)[0].backward()
    no_grad = starved()
    expected = []
    assert sorted(no_grad) == sorted(expected)


@pytest.mark.parametrize("variant,kw", BUILDS, ids=IDS)
def test_checkpoint_round_trip(tmp_path, variant, kw):
    m = _model(variant, kw)
    path = save_checkpoint(tmp_path / "m.pt", m, ModelMeta.default(7, (64, 96)))
    loaded, meta = load_model(path)
    assert loaded.cfg == m.cfg and meta.input_size == (64, 96) and len(meta.classes) == 7
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(loaded(x)["logits"], m(x)["logits"])


@pytest.mark.parametrize("variant,kw", FOCUS_BUILDS, ids=FOCUS_IDS)
@pytest.mark.parametrize("size", [(64, 64), (75, 133), (203, 317)])
@pytest.mark.parametrize("k", [0.1, 0.25, 0.5, 1.0])
def test_dense_and_sparse_paths_agree(variant, kw, size, k):
    m = _model(variant, kw)
    x = torch.randn(3, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        dense = m(x, topk_ratio=k, mode="dense")
        sparse = m(x, topk_ratio=k, mode="sparse")
        off = m(x, topk_ratio=0.0)
    assert torch.equal(dense["selected"], sparse["selected"])
    assert (dense["logits"] - sparse["logits"]).abs().max().item() <= 1e-4
    # the refinement is not a no-op: it changes the logits of the selected regions
    assert (dense["logits"] - off["logits"]).abs().max().item() > 1e-3


@pytest.mark.parametrize("variant,kw", FOCUS_BUILDS, ids=FOCUS_IDS)
def test_refinement_replaces_logits_only_inside_selected_regions(variant, kw):
    m = _model(variant, kw)
    x = torch.randn(2, 3, 128, 256)
    with torch.no_grad():
        on, off = m(x, topk_ratio=0.25, mode="sparse"), m(x, topk_ratio=0.0)
    r = m.cfg.region_px // m.cfg.refine_stride  # region side in logit cells
    changed = ((on["logits"] - off["logits"]).abs().amax(1, keepdim=True) > 0).float()
    assert torch.equal(torch.nn.functional.max_pool2d(changed, r), on["selected"])
    # K = 0 is the cheap path: the stride-8 logits bilinearly upsampled
    up = torch.nn.functional.interpolate(m(x)["coarse"], scale_factor=8 // m.cfg.refine_stride, mode="bilinear",
                                         align_corners=False)
    assert torch.allclose(off["logits"], up, atol=1e-5)


@pytest.mark.parametrize("variant,kw", FOCUS_BUILDS, ids=FOCUS_IDS)
def test_focus_flops_scale_with_k(variant, kw):
    m = _model(variant, kw)
    with torch.no_grad():
        _, _, inputs = m.focus_inputs(torch.randn(1, 3, 256, 512))
        flops = {}
        for k in (0.25, 0.5, 1.0):
            with FlopCounterMode(display=False) as fc:
                m.refiner(*inputs, k, "sparse")
            flops[k] = fc.get_total_flops()
    assert flops[1.0] > 0
    assert flops[0.25] / flops[1.0] == pytest.approx(0.25, rel=1e-6)
    assert flops[0.5] / flops[1.0] == pytest.approx(0.5, rel=1e-6)


def test_region_index_crops_match_zero_padded_slices_and_paste_into_the_interior():
    fine, ctx = torch.randn(2, 3, 8, 12), torch.randn(2, 2, 4, 6)  # 2x3 regions of 4 cells, halo 2
    index = RegionIndex(8, 12, 4, 2, 2, fine.device)
    bi, ridx = torch.tensor([0, 1, 1]), torch.tensor([0, 5, 1])
    crops = index.gather((fine, ctx), (1, 2), bi, ridx)
    assert crops.shape == (3, 5, 8, 8)
    padded = torch.nn.functional.pad(fine, (2, 2, 2, 2))
    ctx_up = torch.nn.functional.pad(ctx.repeat_interleave(2, 2).repeat_interleave(2, 3), (2, 2, 2, 2))
    for n in range(3):  # region (row, col) = divmod(ridx, 3); crop origin (4 row - 2, 4 col - 2)
        y, x = 4 * (int(ridx[n]) // 3), 4 * (int(ridx[n]) % 3)
        assert torch.equal(crops[n, :3], padded[int(bi[n]), :, y:y + 8, x:x + 8])
        assert torch.equal(crops[n, 3:], ctx_up[int(bi[n]), :, y:y + 8, x:x + 8])  # nearest lookup, zero outside
    # the interior rows of region 5 on the flat (H*W) grid: rows 4..7, columns 8..11
    assert index.inner[5].tolist() == [r * 12 + c for r in range(4, 8) for c in range(8, 12)]


def test_num_selected():
    assert num_selected(0.0, 10) == 0
    assert num_selected(0.01, 10) == 1
    assert num_selected(0.25, 10) == 3  # round(2.5) half up
    assert num_selected(1.0, 10) == 10


def test_selector_target_is_the_cheap_predictions_region_error_rate():
    target = torch.zeros(1, 64, 64, dtype=torch.long)
    target[0, :32, :32] = 1  # top-left 32x32 region is class 1, the rest class 0
    target[0, 40, 40] = 255  # ignored pixels count as correct
    coarse = torch.zeros(1, 2, 8, 8)
    coarse[0, 0] = 5.0  # predicts class 0 everywhere
    t = region_error_target(coarse, target, 32, (2, 2))
    assert t.shape == (1, 1, 2, 2)
    assert t[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_selector_gets_gradient_from_segmentation_loss_alone():
    """Straight-through gate: without the hardness loss, the main loss still reaches the selector
    through the selected regions' corrections."""
    m = _model("fornet_s", {}).train()
    out = m(torch.randn(1, 3, 96, 128))
    loss, _ = fornet_loss(out, torch.randint(0, 7, (1, 96, 128)), m.cfg, aux_weight=0, selector_weight=0)
    loss.backward()
    assert m.selector.net[-1].weight.grad.abs().sum() > 0


def test_straight_through_gate_leaves_values_unscaled():
    """The forward value of a refined region is coarse_up + delta, whatever the importance."""
    m = _model("fornet_s", {})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        full = m(x, topk_ratio=1.0, mode="dense")["logits"]
        _, _, (fine, ctx, up, imp) = m.focus_inputs(x)
        half = m.refiner(fine, ctx, up, imp * 0.5, 1.0, "dense")[0]
    assert torch.allclose(full, half, atol=1e-6)


def test_ddrnet_baseline_matches_the_paper_size():
    m = create_model("ddrnet23_slim", num_classes=19)
    n = sum(p.numel() for p in m.parameters())
    assert 5.6e6 < n < 5.8e6  # "about 5.7 M" (Hong et al. 2021, DDRNet-23-slim)


def test_config_defaults_are_fornet_s_and_validation():
    assert create_model("fornet_s").cfg == ModelConfig()
    cfg = create_model("fornet_m").cfg
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    for bad, match in [(dict(topk_ratio=1.5), "topk_ratio"), (dict(region_px=12), "region_px"),
                       (dict(refine_stride=8), "refine_stride"), (dict(arch="unet"), "arch"),
                       (dict(dilations=(1, 1, 1)), "paper_dilations")]:
        with pytest.raises(ValueError, match=match):
            variant_config("mnv2_paper" if "dilations" in bad else "fornet_s", **bad)
    with pytest.raises(ValueError, match="focus does not apply to mnv2_paper"):  # the plain head is its focus-off build
        create_model("mnv2_paper", focus=False)
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="unknown variant"):
        create_model("fornet_xxl")
    with pytest.raises(ValueError, match="mode"):
        create_model("fornet_s")(torch.randn(1, 3, 64, 64), mode="fast")


def test_adaptive_k_honours_bounds_and_is_monotone_in_threshold():
    from fornet_ros.model import AdaptiveK
    scores = torch.rand(3, 200, generator=torch.Generator().manual_seed(0))
    scores[1] *= 0.2  # an "empty road": low importance everywhere
    counts = []
    for t in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0):
        c = AdaptiveK(t, k_min=0.05, k_max=0.6).counts(scores)
        assert ((c >= 10) & (c <= 120)).all()  # round(0.05 * 200), round(0.6 * 200)
        counts.append(c)
    assert all((a >= b).all() for a, b in zip(counts, counts[1:]))  # never more with a higher threshold
    assert counts[2][1] == 10 and counts[2][0] > 10  # the empty image refines k_min, the busy one more
    with pytest.raises(ValueError):
        AdaptiveK(0.5, k_min=0.6, k_max=0.2)


def test_adaptive_k_batch_equals_single_images_and_dense_equals_sparse():
    from fornet_ros.model import AdaptiveK
    m = _model("fornet_s", {})
    x = torch.randn(3, 3, 128, 256, generator=torch.Generator().manual_seed(2))
    x[1] *= 0.1  # a different-looking image: different importances, a different count
    with torch.no_grad():
        imp = m(x, topk_ratio=0.0)["importance"]
        rule = AdaptiveK(float(imp.median()), k_min=0.05, k_max=0.9)
        batch = m(x, topk_ratio=rule, mode="sparse")
        dense = m(x, topk_ratio=rule, mode="dense")
        singles = [m(x[i:i + 1], topk_ratio=rule, mode="sparse") for i in range(3)]
    per_image = batch["selected"].flatten(1).sum(1)
    assert len(set(per_image.tolist())) > 1  # different K per image in one batch
    for i, s in enumerate(singles):
        assert torch.equal(batch["selected"][i], s["selected"][0])
        assert (batch["logits"][i] - s["logits"][0]).abs().max() <= 1e-4
    assert (batch["logits"] - dense["logits"]).abs().max() <= 1e-4
    # the selected regions are each image's most important ones
    imp, sel = batch["importance"].flatten(1), batch["selected"].flatten(1) > 0
    for i in range(3):
        assert imp[i][sel[i]].min() >= imp[i][~sel[i]].max()


def test_paper_head_masks_are_nested_top_k_of_the_selector():
    """The authors' Top-K: four masks at K/4, 2K/4, 3K/4, K of the stride-8 cells, each the highest
    selector scores of its image, each inside the next; ``selected`` is the largest."""
    from fornet_ros.model.paper_head import nested_topk_masks
    scores = torch.randn(2, 1, 6, 10, generator=torch.Generator().manual_seed(0))
    masks = nested_topk_masks(scores, [0.1, 0.2, 0.3, 0.4])
    for m, r in zip(masks, (0.1, 0.2, 0.3, 0.4)):
        k = num_selected(r, 60)
        assert m.flatten(1).sum(1).tolist() == [k, k]
        for i in range(2):  # the kept cells are the k highest
            kept, rest = scores[i].flatten()[m[i].flatten() > 0], scores[i].flatten()[m[i].flatten() == 0]
            assert kept.min() > rest.max()
    for a, b in zip(masks, masks[1:]):
        assert bool((a <= b).all())
    m = _model("mnv2_paper", {})
    with torch.no_grad():
        out = m(torch.randn(1, 3, 64, 96), topk_ratio=0.4)
    assert out["selected"].sum() == num_selected(0.4, 8 * 12)
    sel, imp = out["selected"].flatten() > 0, out["importance"].flatten()
    assert imp[sel].min() >= imp[~sel].max()


def test_paper_head_selector_learns_through_the_straight_through_masks():
    """Without its own loss the selector still gets gradient from the segmentation loss (the hard
    mask's straight-through term), and K changes the output (the masks gate the branches)."""
    m = _model("mnv2_paper", {}).train()
    x, y = torch.randn(2, 3, 64, 96), torch.randint(0, 7, (2, 64, 96))
    loss, parts = fornet_loss(m(x), y, m.cfg, aux_weight=0, selector_weight=0)
    assert "selector" not in parts
    loss.backward()
    assert m.paper.selector[1].weight.grad.abs().sum() > 0
    m.eval()
    with torch.no_grad():
        assert (m(x, topk_ratio=0.1)["logits"] - m(x, topk_ratio=0.8)["logits"]).abs().max() > 1e-4


def test_boundary_target_marks_class_edges_with_a_decaying_band():
    from fornet_ros.training.losses import boundary_target
    target = torch.zeros(1, 64, 64, dtype=torch.long)
    target[0, :, 32:] = 1  # a vertical edge between columns 31 and 32
    target[0, :8, :8] = 255  # an ignored corner: weight 0 there
    tgt, w = boundary_target(target, (8, 8), band=2, decay=0.5)
    row = tgt[0, 0, 4].tolist()  # cells of 8 px: the edge lies in cells 3 and 4
    assert row == [0.0, 0.25, 0.5, 1.0, 1.0, 0.5, 0.25, 0.0]
    assert w[0, 0, 0, 0] == 0 and w[0, 0, 4, 4] == 1 and tgt[0, 0, 0, 0] == 0


def test_dice_loss_is_zero_for_a_perfect_prediction_and_ignores_void():
    from fornet_ros.training.losses import dice_loss
    y = torch.randint(0, 3, (2, 16, 16))
    perfect = torch.nn.functional.one_hot(y, 3).permute(0, 3, 1, 2).float() * 50
    assert dice_loss(perfect, y).item() < 1e-3
    y_void = y.clone()
    y_void[:, :8] = 255
    wrong = perfect.clone()
    wrong[:, :, :8] = wrong[:, :, :8].roll(1, 1)  # wrong only where the label is void
    assert dice_loss(wrong, y_void).item() < 1e-3
    assert dice_loss(perfect.roll(1, 1), y).item() > 0.99


def test_r101_paper_is_the_authors_configuration():
    m = create_model("r101_paper", num_classes=19).eval()
    enc = m.backbone.encoder
    assert sum(p.numel() for p in enc.parameters()) == 42_500_160  # torchvision resnet101 without fc
    assert enc.layer4[1].conv2.dilation == (4, 4) and enc.layer3[1].conv2.dilation == (2, 2)  # output stride 8
    assert m.cfg.topk_ratio == 0.4 and m.cfg.head_cfg.dilations == (1, 1, 1, 16)
    assert m.cfg.backbone_cfg.neck_channels == 256 and m.cfg.head_cfg.channels == 256
    with torch.no_grad():
        out = m(torch.randn(1, 3, 64, 80))
    assert out["logits"].shape == (1, 19, 16, 20) and out["selected"].sum() == num_selected(0.4, 8 * 10)


@pytest.mark.parametrize("variant", ["mnv2_paper", "mnv2_sparse", "mnv2_plain"])
def test_half_precision_runs_under_autocast_and_converted(variant):
    """GPUs train under fp16 autocast and infer with a .half() model; bf16 on the CPU exercises the
    same dtype paths (the paper head's fp32 selector logit must accept a low-precision input)."""
    m = _model(variant, {})
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x)
    assert torch.isfinite(out["logits"].float()).all()
    with torch.no_grad():
        out = m.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert torch.isfinite(out["logits"].float()).all()
    if m.cfg.head == "paper":
        assert out["selector_logits"].dtype == torch.float32


# The packaged models' outputs on one synthetic image (no dataset frame), recorded from the model code
# as it shipped: (logits mean, logits std, label histogram, importance sum). Reorganising the model
# (its blocks, its config) must keep loading both files strictly (checkpoint.load_model) and reproduce them.
PACKAGED_OUTPUTS = {
    "default": (-3.808886, 3.153956, [0, 0, 216, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 730, 13, 0, 1, 0, 0], 4.36579),
    "camvid": (-6.476391, 6.608179, [6, 122, 7, 0, 0, 0, 0, 0, 127, 0, 281, 0, 0, 417, 0, 0, 0, 0, 0], 0.5601),
    "fast": (-3.444393, 3.941353, [0, 0, 846, 0, 0, 0, 0, 72, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0], 0.15335),
}


def packaged_test_image():
    y, x = torch.meshgrid(torch.linspace(-2, 2, 96), torch.linspace(-2, 2, 160), indexing="ij")
    return torch.stack([torch.sin(3 * x) + y, torch.cos(2 * y) - x, x * y / 2])[None]


@pytest.mark.parametrize("name", sorted(PACKAGED_OUTPUTS))
def test_packaged_checkpoints_load_strictly_and_reproduce_their_outputs(name):
    from fornet_ros.inference.checkpoint import default_checkpoint_path
    from fornet_ros.model.encoders import NORMALIZATION
    m, meta = load_model(default_checkpoint_path(name))  # strict: every key, every shape
    assert (meta.mean, meta.std) == NORMALIZATION[m.cfg.backbone]  # what the trainer wrote for its backbone
    with torch.no_grad():
        out = m(packaged_test_image())
    logits = out["logits"].double()
    mean, std, hist, importance = PACKAGED_OUTPUTS[name]
    assert logits.shape == (1, 19, 24, 40)
    assert logits.mean().item() == pytest.approx(mean, abs=1e-4) and logits.std().item() == pytest.approx(std, abs=1e-4)
    assert logits.argmax(1).flatten().bincount(minlength=19).tolist() == hist
    assert out["importance"].double().sum().item() == pytest.approx(importance, abs=1e-3)


def test_the_default_is_stored_in_the_typed_layout():
    from fornet_ros.config import EncoderConfig, SparseHeadConfig
    from fornet_ros.inference.checkpoint import FORMAT, read_checkpoint
    ckpt = read_checkpoint("default")  # written by this trainer (fornet_ros/2)
    assert ckpt["format"] == FORMAT and set(ckpt["model_config"]) == {"variant", "arch", "num_classes", "topk_ratio",
                                                                       "backbone", "head"}
    cfg = ModelConfig.from_dict(ckpt["model_config"])
    assert cfg.backbone_cfg == EncoderConfig("mobilenet_v2", 96) and cfg.head_cfg == SparseHeadConfig()
    assert cfg.topk_ratio == 1.0


@pytest.mark.parametrize("name", ["camvid", "fast"])
def test_packaged_flat_configs_migrate_to_typed_ones_and_save_in_the_new_layout(name, tmp_path):
    """The older packaged files store the first release's flat config (16 keys, most inert); the one
    migration gives each part only its own options, and a re-saved model stores the typed layout
    and computes the same outputs."""
    from fornet_ros.config import EncoderConfig, LightBackboneConfig, SparseHeadConfig, migrate_flat_config
    from fornet_ros.inference.checkpoint import default_checkpoint_path, read_checkpoint
    flat = read_checkpoint(name)["model_config"]
    assert isinstance(flat.get("backbone", "light"), str)  # the flat layout, as shipped
    cfg = migrate_flat_config(flat)
    assert ModelConfig.from_dict(flat) == cfg  # from_dict migrates by itself
    if name == "camvid":  # mnv2_sparse: stores channels [24, 48, 96, 128] that MobileNetV2 never read
        assert flat["channels"] == [24, 48, 96, 128] and cfg.backbone_cfg == EncoderConfig("mobilenet_v2", 96)
        assert cfg.head_cfg == SparseHeadConfig() and cfg.topk_ratio == 1.0
    else:
        assert cfg == ModelConfig(variant="fornet_s", backbone_cfg=LightBackboneConfig(), head_cfg=SparseHeadConfig())
    m, meta = load_model(default_checkpoint_path(name))
    assert m.cfg == cfg
    save_checkpoint(tmp_path / "resaved.pt", m, meta)
    stored = read_checkpoint(tmp_path / "resaved.pt")["model_config"]
    assert set(stored) == {"variant", "arch", "num_classes", "topk_ratio", "backbone", "head"}
    assert "channels" not in stored["backbone"] or cfg.backbone == "light"  # no inert options
    again, _ = load_model(tmp_path / "resaved.pt")
    x = packaged_test_image()
    with torch.no_grad():
        assert torch.equal(again(x)["logits"], m(x)["logits"])


def test_flat_paper_and_ddrnet_configs_migrate():
    from fornet_ros.config import EncoderConfig, PaperHeadConfig, PlainHeadConfig, migrate_flat_config
    paper = migrate_flat_config(dict(variant="r101_paper", backbone="resnet101", head="paper", region_px=8,
                                     topk_ratio=0.4, neck_channels=256, channels=[24, 48, 96, 128]))
    assert paper == variant_config("r101_paper")  # the flat layout's neck width was also the head's
    plain = migrate_flat_config(dict(backbone="efficientnet_lite0", head="plain", region_px=8, focus=False))
    assert plain.backbone_cfg == EncoderConfig("efficientnet_lite0") and plain.head_cfg == PlainHeadConfig(96)
    assert plain.region_px == 8 and not plain.focus and isinstance(variant_config("mnv2_paper").head_cfg, PaperHeadConfig)
    ddr = migrate_flat_config(dict(variant="ddrnet23_slim", arch="ddrnet", focus=False, topk_ratio=0.0))
    assert ddr == variant_config("ddrnet23_slim") and ddr.backbone is None and ddr.head is None and ddr.region_px == 32
    assert ModelConfig.from_dict(ddr.to_dict()) == ddr
    for bad, match in [(dict(head="paper", region_px=32), "region_px must be 8"), (dict(backbone="vgg"), "backbone"),
                       (dict(head="plain", region_px=8), "focus=False")]:
        with pytest.raises(ValueError, match=match):
            migrate_flat_config(bad)
