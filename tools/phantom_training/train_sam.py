"""Train the phantom SAM (v1): click / box -> mask, with a correction round.

Each step encodes a batch of crops, decodes the whole batch at once (a batched copy of
``MaskDecoder.predict_masks``, whose own version takes one image per call), then runs
a second round that adds a correction click and feeds back the previous low-res
logits, as the plugin does for a correction.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from phantom_training.data import choose_mode, correction_click, first_prompt, sample_crop
from phantom_training.losses import resize_mask, sam_loss
from phantom_training.prompts import add_clicks, batch_prompts
from phantom_training.schedule import TimeBudget

from napari_textseg.engine.backends import SamBackend
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
    hyper = torch.stack([mlp(hs[:, 1 + i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1)
    b, c, h, w = upscaled.shape
    masks = (hyper @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
    ious = decoder.iou_prediction_head(hs[:, 0])
    keep = slice(1, None) if multimask else slice(0, 1)
    return masks[:, keep], ious[:, keep]


def train_sam(arch: dict, minutes: float, bank, *, seed: int = 0, batch: int = 16, lr: float = 1.5e-3,
              log=print) -> torch.nn.Module:
    """Train a SAM of ``arch`` for ``minutes`` of wall-clock time on ``bank``; returns it (eval mode)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_sam(arch)
    backend = SamBackend(model, torch.device("cpu"))
    model.train()
    size = backend.image_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    budget = TimeBudget(minutes, lr)
    seen, running = 0, []
    while budget.running():
        crops = [sample_crop(bank, rng) for _ in range(batch)]
        images = torch.cat([
            backend.model_input(torch.from_numpy(c.frames[:1])[:, None].expand(1, 3, -1, -1)) for c in crops
        ])
        targets = torch.cat([resize_mask(torch.from_numpy(c.targets[:1]), size) for c in crops])
        scales = [size / c.frames.shape[-1] for c in crops]
        mode = choose_mode(rng)
        prompts = [first_prompt(c.targets[0], rng, mode) for c in crops]
        embeds = model.image_encoder(images)

        xy, labels, boxes = batch_prompts(prompts, scales, box_as_points=False)
        points = (xy, labels) if (labels >= 0).any() else None
        low, ious = _decode_batch(model, embeds, points, boxes, None, mode == "click")
        logits = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
        loss = sam_loss(logits, ious, targets, best_of=False)

        best = ious.argmax(dim=1)
        rows = torch.arange(batch)
        pred = (logits[rows, best] > 0).detach().numpy()
        clicks = [correction_click(pred[i], targets[i].numpy(), rng) for i in range(batch)]
        xy, labels, boxes = batch_prompts(add_clicks(prompts, clicks, scales), scales, box_as_points=False)
        low2, ious2 = _decode_batch(model, embeds, (xy, labels), boxes, low[rows, best][:, None].detach(), False)
        logits2 = F.interpolate(low2, size=(size, size), mode="bilinear", align_corners=False)
        loss = loss + sam_loss(logits2, ious2, targets)

        lr_now = budget.optimise(optimizer, model, loss)
        seen += batch
        running.append(loss.item())
        if budget.step % 50 == 0:
            log(f"sam  step {budget.step:5d}  {budget.elapsed / 60:5.1f} min  crops {seen:6d}  "
                f"loss {np.mean(running[-50:]):.3f}  lr {lr_now:.2e}")
    log(f"sam  done: {budget.step} steps, {seen} crops, {budget.elapsed / 60:.1f} min")
    return model.eval()
