"""SAM2's prompt encoder and mask decoder on one slice, as ``SAM2Base._forward_sam_heads``
runs them, without upsampling every candidate mask to the model's input size.

``_forward_sam_heads`` upsamples all three candidate masks to 1024 px (6 to 9 ms on two
CPU cores, about as long as the rest of a click besides the decoder) and keeps one. A click
never uses that mask: the video predictor encodes a prompted slice's memory later, from
its low-res logits. Tracked slices need the chosen mask at input size for their memory;
bilinear upsampling works channel by channel, so upsampling only the chosen one gives
the same values. Everything else is step for step SAM2's, and the equivalence tests
compare the results with ``SAM2ImagePredictor`` and ``SAM2VideoPredictor``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["HeadsOutput", "sam2_heads"]

_NO_OBJ_SCORE = -1024.0  # sam2.modeling.sam2_base.NO_OBJ_SCORE


@dataclass
class HeadsOutput:
    """The chosen mask of one decoder call and what memory needs of it."""

    low_res: torch.Tensor  # (1, 1, 256, 256) float32 logits
    ious: torch.Tensor  # (1, M) predicted IoU of each candidate
    obj_ptr: torch.Tensor  # (1, C)
    object_score: torch.Tensor  # (1, 1) logits
    high_res: torch.Tensor | None  # (1, 1, S, S) the chosen mask at input size, if asked for


def sam2_heads(
    model,
    backbone_features: torch.Tensor,
    point_inputs: dict[str, torch.Tensor] | None,
    mask_inputs: torch.Tensor | None,
    high_res_features: list[torch.Tensor],
    multimask_output: bool,
    *,
    with_high_res: bool,
) -> HeadsOutput:
    """One call of SAM2's heads; ``with_high_res`` upsamples the chosen mask to the input size."""
    batch, device = backbone_features.size(0), backbone_features.device
    if point_inputs is not None:
        coords, labels = point_inputs["point_coords"], point_inputs["point_labels"]
    else:  # SAM2 pads with one empty point (label -1)
        coords = torch.zeros(batch, 1, 2, device=device)
        labels = -torch.ones(batch, 1, dtype=torch.int32, device=device)
    mask_prompt = mask_inputs
    encoder = model.sam_prompt_encoder
    if mask_inputs is not None and mask_inputs.shape[-2:] != encoder.mask_input_size:
        mask_prompt = F.interpolate(
            mask_inputs.float(),
            size=encoder.mask_input_size,
            align_corners=False,
            mode="bilinear",
            antialias=True,
        )
    sparse, dense = encoder(points=(coords, labels), boxes=None, masks=mask_prompt)
    masks, ious, tokens, object_score = model.sam_mask_decoder(
        image_embeddings=backbone_features,
        image_pe=encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask_output,
        repeat_image=False,
        high_res_features=high_res_features,
    )
    if model.pred_obj_scores:
        appearing = object_score > 0
        masks = torch.where(appearing[:, None, None], masks, _NO_OBJ_SCORE)
    masks = masks.float()
    token = tokens[:, 0]
    if multimask_output:
        best = torch.argmax(ious, dim=-1)
        rows = torch.arange(batch, device=device)
        masks = masks[rows, best].unsqueeze(1)
        if tokens.size(1) > 1:
            token = tokens[rows, best]
    obj_ptr = model.obj_ptr_proj(token)
    if model.pred_obj_scores:
        weight = object_score.sigmoid() if model.soft_no_obj_ptr else appearing.float()
        if model.fixed_no_obj_ptr:
            obj_ptr = weight * obj_ptr
        obj_ptr = obj_ptr + (1 - weight) * model.no_obj_ptr
    high_res = None
    if with_high_res:
        high_res = F.interpolate(
            masks, size=(model.image_size,) * 2, mode="bilinear", align_corners=False
        )
    return HeadsOutput(
        low_res=masks, ious=ious, obj_ptr=obj_ptr, object_score=object_score, high_res=high_res
    )
