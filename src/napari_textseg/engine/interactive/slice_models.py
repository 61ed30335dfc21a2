"""SAM and SAM2 behind one slice protocol: encode a slice once, decode many prompts.

Frames come from memory as float32 in [0, 255] (the chosen intensity window), and are
resized on the model's device in floating point: no 8-bit rounding, no JPEG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

# Imported up front on purpose: torchvision pulls in torch._dynamo and triton, and a
# first import of those while another thread runs torch ops (the embedding prefetch)
# can crash the process.
import torchvision  # noqa: F401

from napari_textseg.engine.interactive.features import Features
from napari_textseg.engine.interactive.memory_attention import MemoryView, memory_inputs
from napari_textseg.engine.interactive.postprocess import fill_small_holes
from napari_textseg.engine.interactive.prompts import SlicePrompts
from napari_textseg.engine.interactive.sam2_heads import sam2_heads
from napari_textseg.models.device import autocast
from napari_textseg.models.encoder_runtime import module_hash

__all__ = [
    "Sam2SliceModel",
    "SamSliceModel",
    "SliceModel",
    "SliceMask",
    "model_tag",
    "orig_hw",
    "resize_longest_side",
    "sam_decoder",
]

SAM_PREPROCESSING = ("sam", "medsam")
SAM2_PREPROCESSING = ("sam2", "medsam2")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class SliceMask:
    """One slice's result: the mask, the model's predicted IoU, and low-res logits.

    ``logits`` are fed back as ``mask_input`` when the user adds a correction click;
    ``prompts`` are the ones the engine made for a propagated slice (SAM prompt
    projection), which such a click adds to; ``state`` is SAM2's frame output (object
    pointer, memory), which propagation reads.
    """

    mask: np.ndarray
    score: float
    logits: torch.Tensor
    prompts: SlicePrompts | None = None
    state: dict[str, Any] | None = field(default=None, repr=False)  # SAM2's frame output


class SliceModel(Protocol):
    """What the engine needs from a promptable model family."""

    family: str
    device: torch.device
    runtime_note: str | None  # why the encoder does not run where it was asked to (None: it does)

    @property
    def cache_tag(self) -> str:
        """What makes this model's embeddings what they are (weights, runtime, precision,
        device)."""
        ...

    def encode(self, frame: np.ndarray) -> Features:
        """Image features of a (H, W) float32 frame in [0, 255]."""
        ...

    def decode(
        self, features: Features, prompts: SlicePrompts, mask_logits: torch.Tensor | None = None
    ) -> SliceMask:
        """The mask for ``prompts`` on an encoded slice: one decoder call."""
        ...


def resize_longest_side(images: torch.Tensor, long_side: int) -> torch.Tensor:
    """SAM's resize of (B, C, H, W) float images, sized from H and W.

    segment-anything 1.0's ``ResizeLongestSide.apply_image_torch`` takes the size from
    the batch and channel dimensions instead, squashing every slice; this is what its
    later fix computes, so the result does not depend on the installed release.
    """
    from segment_anything.utils.transforms import ResizeLongestSide

    size = ResizeLongestSide.get_preprocess_shape(
        int(images.shape[-2]), int(images.shape[-1]), long_side
    )
    return F.interpolate(images, size, mode="bilinear", align_corners=False, antialias=True)


def sam_decoder(
    model: Any,
    embed: torch.Tensor,
    points: tuple[torch.Tensor, torch.Tensor] | None,
    boxes: torch.Tensor | None,
    masks: torch.Tensor | None,
    multimask: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's prompt encoder and mask decoder on an image embedding: (low-res logits, IoU)."""
    sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=masks)
    return model.mask_decoder(
        image_embeddings=embed,
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask,
    )


def _as_8bit(frame: np.ndarray) -> np.ndarray:
    """A [0, 255] float frame as the 8-bit image the MedSAM and MedSAM2 scripts read."""
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def _grey_to_rgb(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    if frame.ndim != 2:
        raise ValueError(f"a slice must be 2-D, got shape {frame.shape}")
    image = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32)).to(device)
    return image[None, None].expand(1, 3, *frame.shape)


def model_tag(
    family: str, model: Any, device: torch.device, runtime: str = "torch-f32", *extra: str
) -> str:
    """A slice model's cache tag: its family, its weights' hash, runtime, precision and device
    (CUDA runs under bf16 autocast: other numbers than a CPU's)."""
    return "-".join([family, *extra, module_hash(model)[:16], runtime, device.type])


def orig_hw(features: Features) -> tuple[int, int]:
    hw = features["orig_hw"]
    assert isinstance(hw, torch.Tensor)
    return int(hw[0]), int(hw[1])


class SamSliceModel:
    """Segment Anything (v1), as ``SamPredictor`` runs it, and MedSAM, as its own
    ``MedSAM_Inference.py`` runs it (``preprocess="medsam"``).

    SAM: the longer side resized to the input size, SAM's pixel mean and std, padding,
    coordinates scaled by the same factor. MedSAM: the slice as 8-bit, resized to a
    square input (bicubic, anti-aliased), min-max scaled to [0, 1] without SAM's mean
    and std, coordinates scaled per axis, low-res logits upsampled straight to the slice.
    """

    family = "sam"
    runtime_note: str | None = None

    def __init__(
        self, model: Any, device: torch.device, preprocess: str = "sam", box_shift: int = 5
    ):
        from segment_anything.utils.transforms import ResizeLongestSide

        if preprocess not in SAM_PREPROCESSING:
            raise ValueError(
                f"unknown SAM preprocessing {preprocess!r}; use one of "
                f"{', '.join(SAM_PREPROCESSING)}"
            )
        self.model = model.to(device).eval()
        self.device = device
        self.preprocess = preprocess
        # MedSAM propagates a box alone with its own 3-D box recipe (medsam_infer_3Dbox_adrenal.py)
        self.box_recipe = preprocess == "medsam"
        self.box_shift = int(box_shift)
        self.box_fallback = (
            "previous"  # after an empty slice: the nearest slice's box, as that script
        )
        self.image_size = int(model.image_encoder.img_size)
        # Used for prompt coordinates only, which every release maps from (H, W) correctly.
        self._transform = ResizeLongestSide(self.image_size)

    @cached_property
    def cache_tag(self) -> str:
        return model_tag(self.family, self.model, self.device, "torch-f32", self.preprocess)

    def model_input(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) frames in [0, 255] -> the encoder's input: resized, normalised, padded.

        The training script for the phantom models feeds its crops through this too, so
        a model learns on exactly what the plugin gives it.
        """
        return self.model.preprocess(resize_longest_side(images, self.image_size))

    def _medsam_input(self, frame: np.ndarray) -> torch.Tensor:
        from skimage.transform import resize

        size = (self.image_size, self.image_size)
        square = resize(
            _as_8bit(frame), size, order=3, preserve_range=True, anti_aliasing=True
        ).astype(np.uint8)
        scaled = (square - square.min()) / np.clip(
            float(square.max()) - float(square.min()), 1e-8, None
        )
        return _grey_to_rgb(scaled.astype(np.float32), self.device)

    def encode(self, frame: np.ndarray) -> Features:
        if self.preprocess == "medsam":
            input_hw, image = (self.image_size, self.image_size), self._medsam_input(frame)
        else:
            input_hw = self._transform.get_preprocess_shape(*frame.shape, self.image_size)
            image = self.model_input(_grey_to_rgb(frame, self.device))
        with torch.inference_mode(), autocast(self.device):
            embed = self.model.image_encoder(image)
        return {
            "embed": embed,
            "input_hw": torch.tensor(input_hw),
            "orig_hw": torch.tensor(frame.shape),
        }

    def _coords(self, xy: np.ndarray, orig: tuple[int, int]) -> np.ndarray:
        """(N, 2) slice (x, y) -> the model input's pixels."""
        if self.preprocess == "medsam":
            return xy * (self.image_size / np.array([orig[1], orig[0]], dtype=float))
        return self._transform.apply_coords(xy, orig)

    def decode(
        self, features: Features, prompts: SlicePrompts, mask_logits: torch.Tensor | None = None
    ) -> SliceMask:
        orig = orig_hw(features)
        input_hw = tuple(int(v) for v in features["input_hw"])  # type: ignore[union-attr]
        embed = features["embed"].to(self.device, torch.float32)  # type: ignore[union-attr]
        points = None
        if len(prompts.labels):
            xy = self._coords(prompts.points_yx[:, ::-1].astype(float), orig)
            points = (
                torch.as_tensor(xy, dtype=torch.float32, device=self.device)[None],
                torch.as_tensor(prompts.labels, dtype=torch.int64, device=self.device)[None],
            )
        boxes = None
        if prompts.box is not None:
            y0, x0, y1, x1 = prompts.box
            xyxy = self._coords(np.array([[x0, y0], [x1, y1]], dtype=float), orig).reshape(1, 4)
            boxes = torch.as_tensor(xyxy, dtype=torch.float32, device=self.device)
        if mask_logits is not None:
            mask_logits = mask_logits.to(self.device, torch.float32)
        # A lone click is ambiguous: let SAM propose three masks and keep the best.
        multimask = len(prompts.labels) == 1 and boxes is None and mask_logits is None
        with torch.inference_mode(), autocast(self.device):
            low_res, iou = sam_decoder(self.model, embed, points, boxes, mask_logits, multimask)
            best = int(iou[0].argmax())
            low_res = low_res[:, best : best + 1].float()
            if self.preprocess == "medsam":
                mask = self._medsam_mask(low_res, orig)
            else:
                mask = (
                    self.model.postprocess_masks(low_res, input_hw, orig)[0, 0]
                    > self.model.mask_threshold
                )
        return SliceMask(mask=mask.cpu().numpy(), score=float(iou[0, best]), logits=low_res)

    @staticmethod
    def _medsam_mask(low_res: torch.Tensor, orig: tuple[int, int]) -> torch.Tensor:
        """MedSAM's scripts: sigmoid, then bilinear to the slice, then > 0.5."""
        return (
            F.interpolate(torch.sigmoid(low_res), size=orig, mode="bilinear", align_corners=False)[
                0, 0
            ]
            > 0.5
        )

    # -- MedSAM's 3-D box recipe (BoxPropagator), medsam_infer_3Dbox_adrenal.py ----------

    def model_box(
        self, box_yx: tuple[float, float, float, float], orig: tuple[int, int]
    ) -> np.ndarray:
        """A slice box (y0, x0, y1, x1) -> [x0, y0, x1, y1] in the square model input."""
        y0, x0, y1, x1 = box_yx
        return (
            np.array([x0, y0, x1, y1], dtype=float)
            / np.array([orig[1], orig[0]] * 2)
            * self.image_size
        )

    def box_from_mask(self, mask: np.ndarray) -> np.ndarray | None:
        """The recipe's next box: the mask resized (nearest) to the model input, its bounding
        box widened by ``box_shift``; ``None`` for an empty mask."""
        import cv2

        size = self.image_size
        square = cv2.resize(
            np.asarray(mask, dtype=np.uint8), (size, size), interpolation=cv2.INTER_NEAREST
        )
        ys, xs = np.nonzero(square)
        if not len(ys):
            return None
        s = self.box_shift
        return np.array(
            [
                max(0, xs.min() - s),
                max(0, ys.min() - s),
                min(size, xs.max() + s),
                min(size, ys.max() + s),
            ],
            dtype=float,
        )

    def decode_model_box(self, features: Features, box: np.ndarray) -> SliceMask:
        """One decoder call for a box in model pixels: one mask, no points."""
        boxes = torch.as_tensor(
            np.asarray(box, dtype=float)[None], dtype=torch.float32, device=self.device
        )
        embed = features["embed"].to(self.device, torch.float32)  # type: ignore[union-attr]
        with torch.inference_mode(), autocast(self.device):
            low_res, iou = sam_decoder(self.model, embed, None, boxes, None, multimask=False)
            low_res = low_res.float()
            mask = self._medsam_mask(low_res, orig_hw(features))
        return SliceMask(mask=mask.cpu().numpy(), score=float(iou[0, 0]), logits=low_res)


class Sam2SliceModel:
    """SAM 2 / 2.1 and MedSAM2, as ``SAM2ImagePredictor`` (a click) and ``SAM2VideoPredictor``
    (propagation) run them.

    A prompted slice is decoded without memory, as ``add_new_points_or_box`` does on a
    frame not yet tracked, and its memory is encoded only when a propagation starts
    (:meth:`remember`). A tracked slice reads the memory it is handed
    (:mod:`.memory_attention`). Stored memories are bfloat16 and the low-res logits of
    every slice get SAM2's small-hole fill (``fill_hole_area``), as in the video predictor.
    """

    family = "sam2"
    runtime_note: str | None = None

    def __init__(
        self,
        model: Any,
        device: torch.device,
        fill_hole_area: int | None = None,
        preprocess: str = "sam2",
    ):
        if preprocess not in SAM2_PREPROCESSING:
            raise ValueError(
                f"unknown SAM 2 preprocessing {preprocess!r}; use one of "
                f"{', '.join(SAM2_PREPROCESSING)}"
            )
        self.model = model.to(device).eval()
        self.device = device
        self.preprocess = preprocess
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

            grey = Image.fromarray(_as_8bit(frame))
            square = np.asarray(
                grey.resize((self.image_size, self.image_size), Image.BICUBIC), dtype=np.float32
            )
            image = _grey_to_rgb(square / 255.0, self.device)
            return (image - self._mean) / self._std
        return self.model_input(_grey_to_rgb(frame, self.device))

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
