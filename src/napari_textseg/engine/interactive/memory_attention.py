"""SAM2's memory read for one tracked slice, with the mask memories chosen by a bank.

This follows ``SAM2Base._prepare_memory_conditioned_features`` step by step, so that the
``fifo`` policy gives exactly what ``SAM2VideoPredictor`` gives (the equivalence tests
compare the memory-attention inputs token by token):

- every prompted slice is a conditioning memory (temporal slot 0);
- ``num_maskmem - 1`` past mask memories, at the slots their distance gives;
- object pointers from the prompted slices in the past of the pass and from up to
  ``max_obj_ptrs_in_encoder - 1`` past slices, whether or not those are still in the
  mask memory, their distances normalised by ``min(num_frames, max_obj_ptrs) - 1``.

The one thing a bank changes is which past slices give the mask memories
(:attr:`MemoryView.mask_memory`): with CRISP-SAM2's ``ranked`` policy, the bank's
entries, most recent in the nearest slot. Object pointers are SAM2's either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["MemoryView", "memory_inputs", "select_mask_memories"]

Output = dict[str, Any]


@dataclass
class MemoryView:
    """What one tracked slice may read.

    Attributes
    ----------
    cond
        Prompted slices' outputs by slice index.
    past
        Outputs of the slices this pass has tracked, by slice index (object pointers,
        and the mask memories of ``fifo``).
    mask_memory
        A bank's choice of past outputs, oldest first; ``None`` reads the mask memories
        by distance, as SAM2 does.
    max_past
        With ``mask_memory`` None: read mask memories only from slots at most this many
        slices back (a bank smaller than SAM2's ``num_maskmem - 1``); ``None``: all.
    """

    cond: dict[int, Output]
    past: dict[int, Output] = field(default_factory=dict)
    mask_memory: list[Output] | None = None
    max_past: int | None = None


def _split_cond(model: Any, frame_idx: int, cond: dict[int, Output]) -> tuple[dict, dict]:
    from sam2.modeling.sam2_utils import select_closest_cond_frames

    return select_closest_cond_frames(frame_idx, cond, model.max_cond_frames_in_attn)


def select_mask_memories(
    model: Any, frame_idx: int, view: MemoryView, reverse: bool, cond: tuple[dict, dict]
) -> list[tuple[int, Output]]:
    """(temporal slot, output) pairs for the mask memories, in the order SAM2 concatenates;
    ``cond`` is the prompted slices split into (selected, unselected) for this slice."""
    selected, unselected = cond
    chosen = [(0, out) for out in selected.values()]
    slots = model.num_maskmem
    if view.mask_memory is not None:
        recent = view.mask_memory[-(slots - 1) :] if slots > 1 else []
        # the newest entry takes the slot of the previous slice (t_pos = slots - 1)
        return chosen + [(slots - len(recent) + i, out) for i, out in enumerate(recent)]
    stride = model.memory_temporal_stride_for_eval
    for t_pos in range(1, slots):
        t_rel = slots - t_pos
        if view.max_past is not None and t_rel > view.max_past:
            continue
        if t_rel == 1:
            prev = frame_idx + 1 if reverse else frame_idx - 1
        elif reverse:
            prev = -(-(frame_idx + 2) // stride) * stride + (t_rel - 2) * stride
        else:
            prev = ((frame_idx - 2) // stride) * stride - (t_rel - 2) * stride
        out = view.past.get(prev, unselected.get(prev))
        if out is not None:
            chosen.append((t_pos, out))
    return chosen


def _pointers(
    model: Any,
    frame_idx: int,
    view: MemoryView,
    num_frames: int,
    reverse: bool,
    cond: tuple[dict, dict],
):
    selected, unselected = cond
    sign = -1 if reverse else 1
    if model.only_obj_ptrs_in_the_past_for_eval:
        selected = {
            t: o for t, o in selected.items() if (t >= frame_idx if reverse else t <= frame_idx)
        }
    pairs = [
        (
            (frame_idx - t) * sign if model.use_signed_tpos_enc_to_obj_ptrs else abs(frame_idx - t),
            o["obj_ptr"],
        )
        for t, o in selected.items()
    ]
    limit = min(num_frames, model.max_obj_ptrs_in_encoder)
    for t_diff in range(1, limit):
        t = frame_idx + t_diff if reverse else frame_idx - t_diff
        if t < 0 or t >= num_frames:
            break
        out = view.past.get(t, unselected.get(t))
        if out is not None:
            pairs.append((t_diff, out["obj_ptr"]))
    return pairs, limit


def memory_inputs(
    model: Any, frame_idx: int, view: MemoryView, num_frames: int, reverse: bool, batch: int = 1
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """SAM2 memory-attention inputs for a tracked slice: (memory, memory_pos, pointer tokens)."""
    if not view.cond:
        raise ValueError("tracking a slice needs at least one prompted slice in memory")
    device = model.no_mem_embed.device
    cond = _split_cond(model, frame_idx, view.cond)
    tokens, positions = [], []
    for t_pos, out in select_mask_memories(model, frame_idx, view, reverse, cond):
        feats = out["maskmem_features"].to(device, non_blocking=True)
        tokens.append(feats.flatten(2).permute(2, 0, 1))
        enc = out["maskmem_pos_enc"][-1].to(device).flatten(2).permute(2, 0, 1)
        positions.append(enc + model.maskmem_tpos_enc[model.num_maskmem - t_pos - 1])
    n_ptr_tokens = 0
    if model.use_obj_ptrs_in_encoder:
        from sam2.modeling.sam2_utils import get_1d_sine_pe

        pairs, limit = _pointers(model, frame_idx, view, num_frames, reverse, cond)
        if pairs:
            distances, ptrs = zip(*pairs, strict=True)
            obj_ptrs = torch.stack(ptrs, dim=0)
            width = model.hidden_dim
            if model.add_tpos_enc_to_obj_ptrs:
                dim = width if model.proj_tpos_enc_in_obj_ptrs else model.mem_dim
                pos = torch.tensor(distances).to(device=device, non_blocking=True)
                pos = model.obj_ptr_tpos_proj(get_1d_sine_pe(pos / (limit - 1), dim=dim))
                obj_pos = pos.unsqueeze(1).expand(-1, batch, model.mem_dim)
            else:
                obj_pos = obj_ptrs.new_zeros(len(distances), batch, model.mem_dim)
            if model.mem_dim < width:
                split = width // model.mem_dim
                obj_ptrs = (
                    obj_ptrs.reshape(-1, batch, split, model.mem_dim)
                    .permute(0, 2, 1, 3)
                    .flatten(0, 1)
                )
                obj_pos = obj_pos.repeat_interleave(split, dim=0)
            tokens.append(obj_ptrs)
            positions.append(obj_pos)
            n_ptr_tokens = obj_ptrs.shape[0]
    return torch.cat(tokens, dim=0), torch.cat(positions, dim=0), n_ptr_tokens
