"""Segmentation losses, as SAM and SAM2 train: mask (BCE + Dice), IoU regression, object score."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mask_losses(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask BCE + soft Dice: logits (..., M, H, W) against target (..., H, W) -> (..., M)."""
    target = target.unsqueeze(-3).expand_as(logits).float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(-1, -2))
    prob = logits.sigmoid()
    inter = (prob * target).sum(dim=(-1, -2))
    dice = 1 - (2 * inter + 1) / (prob.sum(dim=(-1, -2)) + target.sum(dim=(-1, -2)) + 1)
    return bce + dice


def hard_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of each thresholded mask (..., M, H, W) with the target (..., H, W)."""
    pred = logits > 0
    target = target.unsqueeze(-3) > 0.5  # boolean, or area-averaged (soft) targets
    inter = (pred & target).sum(dim=(-1, -2)).float()
    union = (pred | target).sum(dim=(-1, -2)).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def sam_loss(
    logits: torch.Tensor,
    ious: torch.Tensor,
    target: torch.Tensor,
    *,
    best_of: bool = True,
    iou_weight: float = 1.0,
) -> torch.Tensor:
    """SAM's multimask loss: the best of the M masks, plus the IoU head against the true IoUs.

    logits (B, M, H, W), ious (B, M), target (B, H, W); mean over the batch; the IoU term
    weighs ``iou_weight`` (1, as SAM's, for the shipped phantom SAM). With
    ``best_of=False`` every mask learns the target: a phantom's target is never
    ambiguous (the innermost object under the click), so whichever mask the IoU head
    ranks first is right.
    """
    per_mask = mask_losses(logits, target)
    best = per_mask.min(dim=-1).values if best_of else per_mask.mean(dim=-1)
    iou_loss = F.mse_loss(ious.float(), hard_iou(logits.detach(), target), reduction="none").mean(
        dim=-1
    )
    return (best + iou_weight * iou_loss).mean()


def resize_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """A (B, H, W) boolean mask resized to (B, size, size) by area (> half covered)."""
    out = F.interpolate(mask[:, None].float(), size=(size, size), mode="bilinear", antialias=True)
    return out[:, 0] > 0.5
