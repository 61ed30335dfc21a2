"""Train the phantom SAM (v1): click / box -> mask, with a correction round.

Each step encodes a batch of crops, decodes several objects per crop at once (a batched
copy of ``MaskDecoder.predict_masks``, whose own version takes one image per call), and
on a share of the steps runs a second round that adds a correction click and feeds
back the previous low-res logits, as the plugin does for a correction. The loss is taken
on the decoder's low-res masks against area-averaged targets (``low_res``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from phantom_training.data import choose_mode, correction_click, first_prompt, sample_targets
from phantom_training.losses import resize_mask, sam_loss
from phantom_training.prompts import add_clicks, batch_prompts
from phantom_training.schedule import TimeBudget

from napari_textseg.engine.interactive.sam_slices import SamSliceModel
from napari_textseg.models.sam import build_sam


def _decode_batch(model, embeds, points, boxes, masks, multimask: bool):
    """SAM's prompt encoder and mask decoder over a batch of (image, prompt) pairs."""
    sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=masks)
    decoder = model.mask_decoder
    tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat((tokens.unsqueeze(0).expand(sparse.size(0), -1, -1), sparse), dim=1)
    src = embeds + dense
    pos = model.prompt_encoder.get_dense_pe().expand_as(src)
    b, c, h, w = src.shape
    hs, src = decoder.transformer(src, pos, tokens)
    upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack(
        [mlp(hs[:, 1 + i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1
    )
    b, c, h, w = upscaled.shape
    masks = (hyper @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
    ious = decoder.iou_prediction_head(hs[:, 0])
    keep = slice(1, None) if multimask else slice(0, 1)
    return masks[:, keep], ious[:, keep]


def _mask_loss(low, ious, targets, iou_weight: float, low_res: bool) -> torch.Tensor:
    """SAM's loss on the decoder's masks, at their own (low) resolution against area-averaged
    targets (as MedSAM trains), or upsampled to the targets' size (as SAM trains)."""
    size = targets.shape[-1]
    if low_res:
        soft = F.avg_pool2d(targets[:, None].float(), size // low.shape[-1])[:, 0]
        return sam_loss(low, ious, soft, best_of=False, iou_weight=iou_weight)
    logits = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return sam_loss(logits, ious, targets, best_of=False, iou_weight=iou_weight)


def _correction_loss(
    model, embeds, prompts, scales, low, ious, targets, rng, iou_weight, alone: bool, low_res: bool
):
    """A second round as a user corrects: a click in the larger error, the previous logits fed back.

    With ``alone`` the click is the slice's only prompt, as on a propagated slice, where the
    plugin has nothing but the propagated logits and the user's click.
    """
    size = targets.shape[-1]
    rows = torch.arange(len(prompts))
    previous = low[rows, ious.argmax(dim=1)][:, None].detach()
    pred = (
        F.interpolate(previous, size=(size, size), mode="bilinear", align_corners=False)[:, 0] > 0
    ).numpy()
    clicks = [correction_click(pred[i], targets[i].numpy(), rng) for i in range(len(prompts))]
    if alone:
        prompts = [(np.zeros((0, 2)), np.zeros(0, dtype=int), None) for _ in prompts]
    xy, labels, boxes = batch_prompts(
        add_clicks(prompts, clicks, scales), scales, box_as_points=False
    )
    low2, ious2 = _decode_batch(model, embeds, (xy, labels), boxes, previous, False)
    return _mask_loss(low2, ious2, targets, iou_weight, low_res)


def train_sam(
    arch: dict,
    minutes: float,
    bank,
    *,
    steps: int | None = None,
    seed: int = 0,
    batch: int = 8,
    per_image: int = 4,
    lr: float = 1.5e-3,
    correct: float = 0.5,
    alone: float = 0.0,
    iou_weight: float = 1.0,
    full_share: float = 0.4,
    roi_share: float = 0.7,
    low_res: bool = True,
    log=print,
) -> torch.nn.Module:
    """Train a SAM of ``arch`` on ``bank`` for ``steps`` optimiser steps, or else ``minutes``
    of wall-clock time; returns it (eval mode).

    Each step encodes ``batch`` crops and decodes ``per_image`` objects in each: the
    encoder, which dominates a step, is shared by several masks.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_sam(arch)
    backend = SamSliceModel(model, torch.device("cpu"))
    model.train()
    size = backend.image_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    budget = TimeBudget(minutes, lr, steps=steps)
    seen, running = 0, []
    while budget.running():
        crops = [
            sample_targets(bank, rng, per_image, full_share=full_share, roi_share=roi_share)
            for _ in range(batch)
        ]
        images = torch.cat(
            [
                backend.model_input(torch.from_numpy(c.frames)[:, None].expand(1, 3, -1, -1))
                for c in crops
            ]
        )
        targets = torch.cat([resize_mask(torch.from_numpy(c.targets), size) for c in crops])
        scales = [size / c.frames.shape[-1] for c in crops for _ in range(per_image)]
        mode = choose_mode(rng)
        prompts = [
            first_prompt(t, rng, mode, own)
            for c in crops
            for t, own in zip(c.targets, c.own, strict=True)
        ]
        embeds = model.image_encoder(images).repeat_interleave(per_image, dim=0)

        xy, labels, boxes = batch_prompts(prompts, scales, box_as_points=False)
        points = (xy, labels) if (labels >= 0).any() else None
        low, ious = _decode_batch(model, embeds, points, boxes, None, mode == "click")
        loss = _mask_loss(low, ious, targets, iou_weight, low_res)
        if rng.random() < correct:
            loss = loss + _correction_loss(
                model,
                embeds,
                prompts,
                scales,
                low,
                ious,
                targets,
                rng,
                iou_weight,
                alone=alone > 0 and rng.random() < alone,
                low_res=low_res,
            )

        lr_now = budget.optimise(optimizer, model, loss)
        seen += len(prompts)
        running.append(loss.item())
        if budget.step % 50 == 0:
            log(
                f"sam  step {budget.step:5d}  {budget.elapsed / 60:5.1f} min  masks {seen:6d}  "
                f"loss {np.mean(running[-50:]):.3f}  lr {lr_now:.2e}"
            )
    log(f"sam  done: {budget.step} steps, {seen} masks, {budget.elapsed / 60:.1f} min")
    return model.eval()
