"""Training losses: OHEM cross-entropy, soft Dice, auxiliary coarse loss, and the selector's loss —
a hardness target for the sparse head, the authors' soft boundary target for the paper head."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..classes import IGNORE_INDEX


def pixel_cross_entropy(logits, target, membership=None):
    """Per-pixel cross-entropy (N, H, W; 0 on ignore pixels). With ``membership`` ((256, C) bool,
    :func:`fornet_ros.classes.membership`) a target is a *code*: an exact class or a set of classes,
    and the loss is the **partial-label** loss −log Σ_{c∈set} p_c = logsumexp(all) − logsumexp(set),
    which is the usual CE for an exact class. A coarse label (CamVid ``car``) then teaches "one of
    car, truck, bus, train" without contradicting a fine dataset's truck."""
    if membership is None:
        return F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none")
    ignore = target == IGNORE_INDEX
    # ignore pixels allow every class (a finite, zero-weighted term: an all -inf row gives NaN gradients)
    allowed = (membership[target.long()] | ignore[..., None]).permute(0, 3, 1, 2)  # N, C, H, W
    logits = logits.float()
    in_set = torch.logsumexp(logits.masked_fill(~allowed, float("-inf")), 1)
    loss = torch.logsumexp(logits, 1) - in_set
    return torch.where(ignore, torch.zeros_like(loss), loss)


def ohem_cross_entropy(logits, target, thresh: float = 0.7, min_kept_frac: float = 1 / 16, membership=None):
    """Online hard example mining (as in BiSeNet/DDRNet): average the CE over pixels whose
    true-class probability (true-set probability for a set label) is below ``thresh``, keeping at
    least ``min_kept_frac`` of the valid pixels (the hardest ones)."""
    loss = pixel_cross_entropy(logits, target, membership).flatten()
    valid = target.flatten() != IGNORE_INDEX
    loss = loss[valid]
    if loss.numel() == 0:
        return logits.sum() * 0.0
    hard = loss > -torch.log(torch.tensor(thresh, device=loss.device))
    min_kept = max(1, int(min_kept_frac * loss.numel()))
    if int(hard.sum()) < min_kept:
        return loss.topk(min_kept).values.mean()
    return loss[hard].mean()


def region_error_target(coarse_logits, target, region_px: int, grid: tuple[int, int], membership=None):
    """Per-region error rate of the cheap stride-8 prediction (upsampled to the label, as it would
    be used without refinement): the selector's hardness target in [0, 1]. Boundaries and thin
    structures are where that prediction is wrong, so they are in the target by construction.

    Regions are blocks of ``region_px`` input pixels on the zero-padded grid ``grid`` (Hr, Wr);
    ignore pixels count as correct (they carry no evidence). With ``membership`` a prediction is
    wrong where it is outside the pixel's label set."""
    H, W = target.shape[-2:]
    with torch.no_grad():
        pred = F.interpolate(coarse_logits.float(), size=(H, W), mode="bilinear", align_corners=False).argmax(1)
        wrong = (pred != target) if membership is None else ~membership[target.long(), pred]
        err = (wrong & (target != IGNORE_INDEX)).float()[:, None]
        Hr, Wr = grid
        err = F.pad(err, (0, Wr * region_px - W, 0, Hr * region_px - H))
        return F.avg_pool2d(err, region_px)


def dice_loss(logits, target, num_exact: int | None = None):
    """Multi-class soft Dice over valid pixels, averaged over the classes present in the batch (the
    FoR-Net authors' L_Dice, smoothing 1). Set-labelled pixels (codes >= ``num_exact``) are left out:
    Dice needs one class per pixel."""
    valid = (target != IGNORE_INDEX)[:, None]
    if num_exact is not None:
        valid = valid & (target < num_exact)[:, None]
    prob = logits.float().softmax(1) * valid
    onehot = torch.zeros_like(prob).scatter_(1, target.masked_fill(~valid[:, 0], 0)[:, None], 1.0) * valid
    inter, gsum = (prob * onehot).sum((0, 2, 3)), onehot.sum((0, 2, 3))
    dice = (2 * inter + 1) / (prob.sum((0, 2, 3)) + gsum + 1)
    present = (gsum > 0).float()
    return 1 - (dice * present).sum() / present.sum().clamp(min=1)


def boundary_target(target, size, band: int = 2, decay: float = 0.5):
    """The paper head's selector target (the authors' ``selector_target``): class boundaries found at
    full resolution (a valid pixel whose 3x3 neighbourhood holds another valid class), max-pooled to
    the ``size`` grid and dilated ``band`` cells with weight ``decay`` per cell. Returns (target,
    weight) with weight 0 on cells without any valid pixel."""
    with torch.no_grad():
        valid = (target != IGNORE_INDEX)[:, None]
        t = target[:, None].float()
        hi = F.max_pool2d(torch.where(valid, t, torch.full_like(t, -1.0)), 3, 1, 1)
        lo = -F.max_pool2d(torch.where(valid, -t, torch.full_like(t, -1e4)), 3, 1, 1)
        edge = F.adaptive_max_pool2d((valid & (hi != lo)).float(), size)
        cell = F.adaptive_max_pool2d(valid.float(), size)
        tgt = cur = edge
        for k in range(1, band + 1):
            cur = F.max_pool2d(cur, 3, 1, 1)
            tgt = torch.maximum(tgt, cur * decay ** k)
        return tgt * cell, cell


def fornet_loss(out, target, cfg, aux_weight: float = 0.4, selector_weight: float | None = None, ohem: bool = True,
                dice_weight: float = 0.0, membership=None):
    """Total loss and its parts: main (OHEM) CE on the final logits upsampled to the label (+ the
    soft Dice with ``dice_weight``), aux CE on the cheap stride-8 logits (``coarse``; DDRNet's
    auxiliary head), and the selector's BCE: against the cheap head's per-region error rate (sparse
    head, weight 1) or the authors' soft boundary target (paper head, weight 0.5).

    ``membership`` (a bool tensor from :func:`fornet_ros.classes.membership` on the logits' device)
    makes every term read set-valued labels: CE terms become the partial-label loss, Dice skips set
    pixels, a coarse prediction inside the set is not an error for the selector, and a boundary
    between two label codes is a boundary for the paper head's selector."""
    size = target.shape[-2:]
    logits = F.interpolate(out["logits"], size=size, mode="bilinear", align_corners=False)
    if ohem:
        main = ohem_cross_entropy(logits, target, membership=membership)
    else:
        main = _mean_valid(pixel_cross_entropy(logits, target, membership), target)
    parts = {"main": main}
    total = main
    if dice_weight > 0:
        parts["dice"] = dice_loss(logits, target, logits.shape[1] if membership is not None else None)
        total = total + dice_weight * parts["dice"]
    head = getattr(cfg, "head", "sparse")
    if selector_weight is None:
        selector_weight = 0.5 if head == "paper" else 1.0
    if head == "paper" and selector_weight > 0:
        sel = out["selector_logits"].float()
        tgt, w = boundary_target(target, sel.shape[-2:])
        bce = F.binary_cross_entropy_with_logits(sel, tgt, reduction="none")
        parts["selector"] = (bce * w).sum() / w.sum().clamp(min=1)
        total = total + selector_weight * parts["selector"]
    if "coarse" in out and aux_weight > 0:
        coarse = F.interpolate(out["coarse"], size=size, mode="bilinear", align_corners=False)
        parts["aux"] = _mean_valid(pixel_cross_entropy(coarse, target, membership), target)
        total = total + aux_weight * parts["aux"]
    if head == "sparse" and cfg.focus and "coarse" in out and selector_weight > 0:
        sel = out["selector_logits"]
        tgt = region_error_target(out["coarse"], target, cfg.region_px, sel.shape[-2:], membership)
        parts["selector"] = F.binary_cross_entropy_with_logits(sel, tgt)
        total = total + selector_weight * parts["selector"]
    parts["total"] = total
    return total, parts


def _mean_valid(loss, target):
    """Mean of a per-pixel loss over the non-ignore pixels (F.cross_entropy's ``mean`` reduction)."""
    valid = target != IGNORE_INDEX
    return (loss * valid).sum() / valid.sum().clamp(min=1)
