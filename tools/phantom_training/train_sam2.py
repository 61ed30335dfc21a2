"""Train the phantom SAM2: click / box -> mask on a conditioning slice, then tracking
through the following slices with SAM2's memory (``SAM2Base._track_step``).

The sam2 package ships no training loop; this is a small one. A batch holds ``batch``
sequences of ``length`` consecutive slices (either direction, possibly running past the
object's end). Slice 0 is prompted (and, on half the steps, corrected with a second
click plus its previous logits); every later slice is segmented from memory alone.
Losses: SAM's best-of-three mask loss and IoU regression, and the object-score loss
that teaches the tracker when the object has ended.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from phantom_training.data import (
    choose_mode,
    correction_click,
    first_prompt,
    sample_crop,
    sample_targets,
)
from phantom_training.losses import resize_mask, sam_loss
from phantom_training.prompts import add_clicks, batch_prompts
from phantom_training.schedule import TimeBudget

from napari_textseg.engine.interactive.sam2_slices import Sam2SliceModel
from napari_textseg.models.sam2 import build_sam2_model


def _point_inputs(prompts, scales):
    xy, labels, _ = batch_prompts(prompts, scales, box_as_points=True)
    return {"point_coords": xy, "point_labels": labels.to(torch.int32)}


def _step(model, feats, pos, sizes, t, points, output_dict, length, prev_logits=None):
    out, sam_outputs, _, _ = model._track_step(
        t, t == 0, feats, pos, sizes, points, None, output_dict, length, False, prev_logits
    )
    multi_logits, _, ious, low, high, obj_ptr, obj_score = sam_outputs
    out.update(
        pred_masks=low, pred_masks_high_res=high, obj_ptr=obj_ptr, object_score_logits=obj_score
    )
    return out, multi_logits, ious, obj_score


def _frame_loss(model, multi_logits, ious, obj_score, target):
    """Mask and IoU losses where the object is there and predicted there; object-score loss
    everywhere."""
    present = target.flatten(1).any(dim=1)
    loss = F.binary_cross_entropy_with_logits(obj_score[:, 0], present.float())
    shown = present & (obj_score[:, 0] > 0)
    if shown.any():
        size = model.image_size
        logits = F.interpolate(
            multi_logits[shown], size=(size, size), mode="bilinear", align_corners=False
        )
        loss = loss + sam_loss(logits, ious[shown], target[shown], best_of=False)
    return loss


def _corrected(
    model, out, feats, pos, sizes, t, prompts, scales, targets, output_dict, length, rng
):
    """The prompted slice again with a correction click and its previous logits:
    (output, correction points, loss)."""
    best = out["pred_masks"].detach()
    high = F.interpolate(best, size=targets.shape[-2:], mode="bilinear", align_corners=False)
    clicks = [
        correction_click((high[i, 0] > 0).numpy(), targets[i].numpy(), rng)
        for i in range(len(prompts))
    ]
    points = _point_inputs(add_clicks(prompts, clicks, scales), scales)
    out, multi, ious, obj = _step(model, feats, pos, sizes, t, points, output_dict, length, best)
    return out, points, _frame_loss(model, multi, ious, obj, targets)


def _image_loss(model, backend, bank, rng, batch: int, per_image: int) -> torch.Tensor:
    """Prompted single slices, ``per_image`` objects per encoded crop, with a correction round
    on half the steps: the image phase, where the tracker's first masks are learnt."""
    size = backend.image_size
    crops = [sample_targets(bank, rng, per_image) for _ in range(batch)]
    images = torch.cat(
        [
            backend.model_input(torch.from_numpy(c.frames)[:, None].expand(1, 3, -1, -1))
            for c in crops
        ]
    )
    targets = torch.cat([resize_mask(torch.from_numpy(c.targets), size) for c in crops])
    _, feats, pos, sizes = model._prepare_backbone_features(model.forward_image(images))
    feats = [f.repeat_interleave(per_image, dim=1) for f in feats]
    pos = [p.repeat_interleave(per_image, dim=1) for p in pos]
    scales = [size / c.frames.shape[-1] for c in crops for _ in range(per_image)]
    mode = choose_mode(rng)
    prompts = [
        first_prompt(t, rng, mode, own)
        for c in crops
        for t, own in zip(c.targets, c.own, strict=True)
    ]
    output_dict: dict[str, dict] = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
    out, multi, ious, obj = _step(
        model, feats, pos, sizes, 0, _point_inputs(prompts, scales), output_dict, 1
    )
    loss = _frame_loss(model, multi, ious, obj, targets)
    if rng.random() < 0.5:
        loss = (
            loss
            + _corrected(
                model, out, feats, pos, sizes, 0, prompts, scales, targets, output_dict, 1, rng
            )[2]
        )
    return loss


def _sequence_loss(model, backend, bank, rng, batch: int, length: int) -> torch.Tensor:
    """``batch`` sequences of ``length`` slices: slice 0 prompted (and corrected on half the
    steps), every later slice segmented from memory alone."""
    size = backend.image_size
    crops = [sample_crop(bank, rng, length) for _ in range(batch)]
    # frames ordered (t, b) so that frame t of every sequence is one contiguous block
    images = torch.cat(
        [
            backend.model_input(
                torch.from_numpy(crops[b].frames[t : t + 1])[:, None].expand(1, 3, -1, -1)
            )
            for t in range(length)
            for b in range(batch)
        ]
    )
    targets = torch.stack(
        [
            resize_mask(torch.from_numpy(crops[b].targets[t : t + 1]), size)[0]
            for t in range(length)
            for b in range(batch)
        ]
    ).view(length, batch, size, size)
    backbone = model.forward_image(images)
    _, feats, pos, sizes = model._prepare_backbone_features(backbone)
    scales = [size / c.frames.shape[-1] for c in crops]
    mode = choose_mode(rng)
    prompts = [first_prompt(c.targets[0], rng, mode) for c in crops]
    output_dict: dict[str, dict] = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
    losses = []
    for t in range(length):
        block = slice(t * batch, (t + 1) * batch)
        f_t = [f[:, block] for f in feats]
        p_t = [p[:, block] for p in pos]
        points = _point_inputs(prompts, scales) if t == 0 else None
        out, multi, ious, obj = _step(model, f_t, p_t, sizes, t, points, output_dict, length)
        losses.append(_frame_loss(model, multi, ious, obj, targets[t]))
        if t == 0 and rng.random() < 0.5:
            out, points, loss = _corrected(
                model,
                out,
                f_t,
                p_t,
                sizes,
                t,
                prompts,
                scales,
                targets[t],
                output_dict,
                length,
                rng,
            )
            losses.append(loss)
        model._encode_memory_in_output(
            f_t, sizes, points, True, out["pred_masks_high_res"], out["object_score_logits"], out
        )
        kind = "cond_frame_outputs" if t == 0 else "non_cond_frame_outputs"
        output_dict[kind][t] = out
    return torch.stack(losses).mean()


def train_sam2(
    arch: dict,
    minutes: float,
    bank,
    *,
    steps: int | None = None,
    seed: int = 0,
    batch: int = 4,
    length: int = 6,
    image_fraction: float = 0.4,
    image_batch: int = 32,
    per_image: int = 4,
    lr: float = 1e-3,
    log=print,
) -> torch.nn.Module:
    """Train a SAM2 of ``arch`` for ``minutes`` of wall-clock time on ``bank``; returns it (eval
    mode).

    The first ``image_fraction`` of the time trains single prompted slices (``image_batch``
    masks a step, ``per_image`` objects per encoded crop): tracking is only as good as the
    masks it starts from.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_sam2_model(arch)
    backend = Sam2SliceModel(model, torch.device("cpu"))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    budget = TimeBudget(minutes, lr, steps=steps)
    seen, running = 0, []
    while budget.running():
        if budget.progress < image_fraction:
            loss = _image_loss(model, backend, bank, rng, image_batch // per_image, per_image)
            seen += image_batch // per_image
        else:
            loss = _sequence_loss(model, backend, bank, rng, batch, length)
            seen += batch
        lr_now = budget.optimise(optimizer, model, loss)
        running.append(loss.item())
        if budget.step % 25 == 0:
            log(
                f"sam2 step {budget.step:5d}  {budget.elapsed / 60:5.1f} min  crops and sequences "
                f"{seen:6d}  "
                f"loss {np.mean(running[-25:]):.3f}  lr {lr_now:.2e}"
            )
    log(
        f"sam2 done: {budget.step} steps, {seen} crops and sequences, {budget.elapsed / 60:.1f} min"
    )
    return model.eval()
