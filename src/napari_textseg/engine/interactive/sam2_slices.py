"""SAM 2 / 2.1 and MedSAM2 behind the slice interface, with SAM2's memory."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# Imported up front on purpose (see sam_slices): torchvision before any worker thread.
import torchvision  # noqa: F401

from napari_textseg.engine.interactive.features import Features
from napari_textseg.engine.interactive.memory_attention import MemoryView, memory_inputs
from napari_textseg.engine.interactive.postprocess import fill_small_holes
from napari_textseg.engine.interactive.prompts import SlicePrompts
from napari_textseg.engine.interactive.sam2_heads import sam2_heads
from napari_textseg.engine.interactive.slice_model import (
    SliceMask,
    SliceModel,
    as_8bit,
    grey_to_rgb,
    model_tag,
    orig_hw,
)
from napari_textseg.models.device import autocast

__all__ = ["SAM2_PREPROCESSING", "Sam2SliceModel"]

SAM2_PREPROCESSING = ("sam2", "medsam2")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class Sam2SliceModel(SliceModel):
    """SAM 2 / 2.1 and MedSAM2, as ``SAM2ImagePredictor`` (a click) and ``SAM2VideoPredictor``
    (propagation) run them.

    A prompted slice is decoded without memory, as ``add_new_points_or_box`` does on a
    frame not yet tracked, and its memory is encoded only when a propagation starts
    (:meth:`remember`). A tracked slice reads the memory it is handed
    (:mod:`.memory_attention`). Stored memories are bfloat16 and the low-res logits of
    every slice get SAM2's small-hole fill (``fill_hole_area``), as in the video predictor.
    """

    family = "sam2"
    title = "SAM2"
    has_memory = True

    def __init__(
        self,
        model: Any,
        device: torch.device,
        fill_hole_area: int | None = None,
        preprocess: str = "sam2",
    ):
        self._take(model, device, preprocess, SAM2_PREPROCESSING)
        self.image_size = int(model.image_size)
        # SAM2VideoPredictor's own setting when the model was built as one, else its default (8)
        self.fill_hole_area = int(
            getattr(model, "fill_hole_area", 8) if fill_hole_area is None else fill_hole_area
        )
        self._mean = torch.tensor(_IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(_IMAGENET_STD, device=device).view(1, 3, 1, 1)
        self._pos_embeds: list[torch.Tensor] | None = None
        self._feat_sizes: list[tuple[int, int]] | None = None
        self._maskmem_pos: list[torch.Tensor] | None = None

    @cached_property
    def cache_tag(self) -> str:
        return model_tag(self.family, self.model, self.device, "torch-f32", self.preprocess)

    def model_input(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) frames in [0, 255] -> the encoder's input: resized and normalised."""
        size = (self.image_size, self.image_size)
        images = F.interpolate(
            images / 255.0, size=size, mode="bilinear", align_corners=False, antialias=True
        )
        return (images - self._mean) / self._std

    def frame_input(self, frame: np.ndarray) -> torch.Tensor:
        """A (H, W) frame in [0, 255] -> the encoder's (1, 3, S, S) input.

        ``"sam2"``: SAM2's own transform (bilinear, anti-aliased, on the float frame).
        ``"medsam2"``: MedSAM2's ``medsam2_infer_3D_CT.py``: the slice as 8-bit, resized
        by PIL (bicubic) to the square input, then the same mean and std.
        """
        if self.preprocess == "medsam2":
            from PIL import Image

            grey = Image.fromarray(as_8bit(frame))
            square = np.asarray(
                grey.resize((self.image_size, self.image_size), Image.BICUBIC), dtype=np.float32
            )
            image = grey_to_rgb(square / 255.0, self.device)
            return (image - self._mean) / self._std
        return self.model_input(grey_to_rgb(frame, self.device))

    def encode(self, frame: np.ndarray) -> Features:
        with torch.inference_mode(), autocast(self.device):
            backbone_out = self.model.forward_image(self.frame_input(frame))
            _, feats, pos, sizes = self.model._prepare_backbone_features(backbone_out)
        if self._pos_embeds is None:
            # Positional encodings depend only on the feature size: keep one copy, not one per
            # slice.
            self._pos_embeds = [p.float() for p in pos]
            self._feat_sizes = [tuple(s) for s in sizes]
        return {"feats": list(feats), "orig_hw": torch.tensor(frame.shape)}

    def _point_inputs(
        self, prompts: SlicePrompts, orig: tuple[int, int]
    ) -> dict[str, torch.Tensor] | None:
        h, w = orig
        coords, labels = [], []
        if prompts.box is not None:
            y0, x0, y1, x1 = prompts.box
            coords += [[x0, y0], [x1, y1]]
            labels += [2, 3]  # SAM2's box corner labels
        coords += prompts.points_yx[:, ::-1].tolist()
        labels += prompts.labels.tolist()
        if not coords:
            return None
        xy = torch.tensor(coords, dtype=torch.float32, device=self.device)
        xy = xy / torch.tensor([w, h], device=self.device) * self.image_size
        return {
            "point_coords": xy[None],
            "point_labels": torch.tensor([labels], dtype=torch.int32, device=self.device),
        }

    def _vision(self, features: Features) -> list[torch.Tensor]:
        if self._pos_embeds is None:
            # Features read from the disk cache: the positional encodings (one constant of
            # the model for this input size) come from one encoder call.
            self.encode(np.zeros(orig_hw(features), dtype=np.float32))
        return [f.to(self.device, torch.float32) for f in features["feats"]]  # type: ignore[union-attr]

    def _finish(
        self, orig: tuple[int, int], low_res: torch.Tensor, iou: torch.Tensor, state: dict[str, Any]
    ) -> SliceMask:
        low_res = fill_small_holes(low_res.float(), self.fill_hole_area)
        state["pred_masks"] = low_res
        full = F.interpolate(low_res, size=orig, mode="bilinear", align_corners=False)
        mask = (full[0, 0] > 0).cpu().numpy()
        return SliceMask(mask=mask, score=float(iou.max()), logits=low_res, state=state)

    def decode(
        self, features: Features, prompts: SlicePrompts, mask_logits: torch.Tensor | None = None
    ) -> SliceMask:
        """A prompted slice, without memory; ``mask_logits`` (its previous result) are
        clamped to +-32 and fed with the prompts, as SAM2 does for new clicks on a frame
        it has segmented."""
        orig = orig_hw(features)
        feats = self._vision(features)
        point_inputs = self._point_inputs(prompts, orig)
        if mask_logits is not None:
            mask_logits = torch.clamp(mask_logits.to(self.device, torch.float32), -32.0, 32.0)
        empty = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        model = self.model
        with torch.inference_mode(), autocast(self.device):
            # SAM2Base._track_step on a frame not yet tracked, with sam2_heads for its heads.
            pix = model._prepare_memory_conditioned_features(
                frame_idx=0,
                is_init_cond_frame=True,
                current_vision_feats=feats[-1:],
                current_vision_pos_embeds=self._pos_embeds[-1:],
                feat_sizes=self._feat_sizes[-1:],  # type: ignore[index]
                output_dict=empty,
                num_frames=1,
                track_in_reverse=False,
            )
            heads = sam2_heads(
                model,
                pix,
                point_inputs,
                mask_logits,
                self._high_res_features(feats),
                model._use_multimask(True, point_inputs),
                with_high_res=False,
            )
        state = {
            "obj_ptr": heads.obj_ptr.float(),
            "object_score_logits": heads.object_score.float(),
            "maskmem_features": None,
            "maskmem_pos_enc": None,
        }
        return self._finish(orig, heads.low_res, heads.ious, state)

    def _high_res_features(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [
            x.permute(1, 2, 0).view(x.size(1), x.size(2), *size)
            for x, size in zip(feats[:-1], self._feat_sizes[:-1], strict=True)  # type: ignore[index]
        ]

    def _store_memory(
        self, state: dict[str, Any], feats: torch.Tensor, pos: list[torch.Tensor]
    ) -> None:
        # bfloat16, as SAM2VideoPredictor stores memories; the positional encoding is one
        # constant of the model, kept once.
        if self._maskmem_pos is None:
            self._maskmem_pos = [p.float() for p in pos]
        state["maskmem_features"] = feats.to(torch.bfloat16)
        state["maskmem_pos_enc"] = self._maskmem_pos

    def remember(self, features: Features, result: SliceMask) -> dict[str, Any]:
        """The frame output of a prompted slice with its memory: encoded from its mask
        (binarised, as it came from clicks), as ``propagate_in_video_preflight`` does."""
        state = result.state
        if state is None:
            raise ValueError("only a SAM2 result of a prompted slice can be remembered")
        if state["maskmem_features"] is None:
            feats = self._vision(features)
            with torch.inference_mode(), autocast(self.device):
                high_res = F.interpolate(
                    state["pred_masks"].to(self.device),
                    size=(self.image_size,) * 2,
                    mode="bilinear",
                    align_corners=False,
                )
                memory, pos = self.model._encode_new_memory(
                    feats,
                    self._feat_sizes,
                    high_res,
                    state["object_score_logits"],
                    is_mask_from_pts=True,
                )
            self._store_memory(state, memory, pos)
        return state

    def track(
        self, features: Features, frame_index: int, view: MemoryView, num_frames: int, reverse: bool
    ) -> SliceMask:
        """One tracked slice of a propagation: memory attention over ``view``, then the
        mask decoder (no prompt), then the memory encoder on its mask."""
        orig = orig_hw(features)
        feats = self._vision(features)
        model = self.model
        batch, width = feats[-1].size(1), model.hidden_dim
        h, w = self._feat_sizes[-1]  # type: ignore[index]
        with torch.inference_mode(), autocast(self.device):
            memory, memory_pos, n_ptr = memory_inputs(model, frame_index, view, num_frames, reverse)
            pix = model.memory_attention(
                curr=feats[-1:],
                curr_pos=self._pos_embeds[-1:],
                memory=memory,  # type: ignore[index]
                memory_pos=memory_pos,
                num_obj_ptr_tokens=n_ptr,
            )
            pix = pix.permute(1, 2, 0).view(batch, width, h, w)
            heads = sam2_heads(
                model,
                pix,
                None,
                None,
                self._high_res_features(feats),
                model._use_multimask(False, None),
                with_high_res=True,
            )
            mem, pos = model._encode_new_memory(
                feats, self._feat_sizes, heads.high_res, heads.object_score, is_mask_from_pts=False
            )
        state = {
            "obj_ptr": heads.obj_ptr.float(),
            "object_score_logits": heads.object_score.float(),
        }
        self._store_memory(state, mem, pos)
        return self._finish(orig, heads.low_res, heads.ious, state)
