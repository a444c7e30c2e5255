"""Training losses: OHEM cross-entropy, auxiliary coarse loss, selector hardness loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .classes import IGNORE_INDEX


def ohem_cross_entropy(logits, target, thresh: float = 0.7, min_kept_frac: float = 1 / 16):
    """Online hard example mining (as in BiSeNet/DDRNet): average the CE over pixels whose
    true-class probability is below ``thresh``, keeping at least ``min_kept_frac`` of the
    valid pixels (the hardest ones)."""
    loss = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none").flatten()
    valid = target.flatten() != IGNORE_INDEX
    loss = loss[valid]
    if loss.numel() == 0:
        return logits.sum() * 0.0
    hard = loss > -torch.log(torch.tensor(thresh, device=loss.device))
    min_kept = max(1, int(min_kept_frac * loss.numel()))
    if int(hard.sum()) < min_kept:
        return loss.topk(min_kept).values.mean()
    return loss[hard].mean()


def region_error_target(coarse_logits, target, region_px: int, grid: tuple[int, int]):
    """Per-region error rate of the cheap stride-8 prediction (upsampled to the label, as it would
    be used without refinement): the selector's hardness target in [0, 1]. Boundaries and thin
    structures are where that prediction is wrong, so they are in the target by construction.

    Regions are blocks of ``region_px`` input pixels on the zero-padded grid ``grid`` (Hr, Wr);
    ignore pixels count as correct (they carry no evidence)."""
    H, W = target.shape[-2:]
    with torch.no_grad():
        pred = F.interpolate(coarse_logits.float(), size=(H, W), mode="bilinear", align_corners=False).argmax(1)
        err = ((pred != target) & (target != IGNORE_INDEX)).float()[:, None]
        Hr, Wr = grid
        err = F.pad(err, (0, Wr * region_px - W, 0, Hr * region_px - H))
        return F.avg_pool2d(err, region_px)


def fornet_loss(out, target, cfg, aux_weight: float = 0.4, selector_weight: float = 1.0, ohem: bool = True):
    """Total loss and its parts: main (OHEM) CE on the final logits upsampled to the label, aux CE
    on the cheap stride-8 head (``coarse``; DDRNet's auxiliary head), BCE of the selector's region
    logits against the cheap head's per-region error rate."""
    size = target.shape[-2:]
    logits = F.interpolate(out["logits"], size=size, mode="bilinear", align_corners=False)
    main = ohem_cross_entropy(logits, target) if ohem else F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
    parts = {"main": main}
    total = main
    if "coarse" in out and aux_weight > 0:
        coarse = F.interpolate(out["coarse"], size=size, mode="bilinear", align_corners=False)
        parts["aux"] = F.cross_entropy(coarse, target, ignore_index=IGNORE_INDEX)
        total = total + aux_weight * parts["aux"]
    if cfg.focus and "coarse" in out and selector_weight > 0:
        sel = out["selector_logits"]
        tgt = region_error_target(out["coarse"], target, cfg.region_px, sel.shape[-2:])
        parts["selector"] = F.binary_cross_entropy_with_logits(sel, tgt)
        total = total + selector_weight * parts["selector"]
    parts["total"] = total
    return total, parts
