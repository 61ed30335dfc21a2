"""SAM and SAM2 behind one slice protocol: encode a slice once, decode many prompts.

Frames come from memory as float32 in [0, 255] (the chosen intensity window), and are
resized on the model's device in floating point: no 8-bit rounding, no JPEG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

# Imported up front on purpose: torchvision pulls in torch._dynamo and triton, and a
# first import of those while another thread runs torch ops (the embedding prefetch)
# can crash the process.
import torchvision  # noqa: F401

from napari_textseg.engine.features import Features
from napari_textseg.engine.prompts import SlicePrompts
from napari_textseg.models.device import autocast

__all__ = ["Sam2Backend", "SamBackend", "SliceBackend", "SliceMask", "make_backend"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class SliceMask:
    """One slice's result: the mask, the model's predicted IoU, and low-res logits.

    ``logits`` are fed back as ``mask_input`` when the user adds a correction click;
    ``prompts`` are the ones the engine made for a propagated slice (SAM prompt
    projection), which such a click adds to.
    """

    mask: np.ndarray
    score: float
    logits: torch.Tensor
    prompts: SlicePrompts | None = None


class SliceBackend(Protocol):
    """What the engine needs from a promptable model family."""

    family: str
    device: torch.device

    def encode(self, frame: np.ndarray) -> Features:
        """Image features of a (H, W) float32 frame in [0, 255]."""
        ...

    def decode(
        self, features: Features, prompts: SlicePrompts, mask_logits: torch.Tensor | None = None
    ) -> SliceMask:
        """The mask for ``prompts`` on an encoded slice: one decoder call."""
        ...


def _grey_to_rgb(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    if frame.ndim != 2:
        raise ValueError(f"a slice must be 2-D, got shape {frame.shape}")
    image = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32)).to(device)
    return image[None, None].expand(1, 3, *frame.shape)


def _orig_hw(features: Features) -> tuple[int, int]:
    hw = features["orig_hw"]
    assert isinstance(hw, torch.Tensor)
    return int(hw[0]), int(hw[1])


class SamBackend:
    """Segment Anything (v1) and MedSAM."""

    family = "sam"

    def __init__(self, model: Any, device: torch.device):
        from segment_anything.utils.transforms import ResizeLongestSide

        self.model = model.to(device).eval()
        self.device = device
        self.image_size = int(model.image_encoder.img_size)
        self._transform = ResizeLongestSide(self.image_size)

    def model_input(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) frames in [0, 255] -> the encoder's input: resized, normalised, padded.

        The training script for the phantom models feeds its crops through this too, so
        a model learns on exactly what the plugin gives it.
        """
        return self.model.preprocess(self._transform.apply_image_torch(images))

    def encode(self, frame: np.ndarray) -> Features:
        input_hw = self._transform.get_preprocess_shape(*frame.shape, self.image_size)
        with torch.inference_mode(), autocast(self.device):
            embed = self.model.image_encoder(self.model_input(_grey_to_rgb(frame, self.device)))
        return {
            "embed": embed,
            "input_hw": torch.tensor(input_hw),
            "orig_hw": torch.tensor(frame.shape),
        }

    def decode(
        self, features: Features, prompts: SlicePrompts, mask_logits: torch.Tensor | None = None
    ) -> SliceMask:
        orig = _orig_hw(features)
        input_hw = tuple(int(v) for v in features["input_hw"])  # type: ignore[union-attr]
        embed = features["embed"].to(self.device, torch.float32)  # type: ignore[union-attr]
        points = None
        if len(prompts.labels):
            xy = self._transform.apply_coords(prompts.points_yx[:, ::-1].astype(float), orig)
            points = (
                torch.as_tensor(xy, dtype=torch.float32, device=self.device)[None],
                torch.as_tensor(prompts.labels, dtype=torch.int64, device=self.device)[None],
            )
        boxes = None
        if prompts.box is not None:
            y0, x0, y1, x1 = prompts.box
            xyxy = self._transform.apply_boxes(np.array([[x0, y0, x1, y1]], dtype=float), orig)
            boxes = torch.as_tensor(xyxy, dtype=torch.float32, device=self.device)
        if mask_logits is not None:
            mask_logits = mask_logits.to(self.device, torch.float32)
        # A lone click is ambiguous: let SAM propose three masks and keep the best.
        multimask = len(prompts.labels) == 1 and boxes is None and mask_logits is None
        with torch.inference_mode(), autocast(self.device):
            sparse, dense = self.model.prompt_encoder(points=points, boxes=boxes, masks=mask_logits)
            low_res, iou = self.model.mask_decoder(
                image_embeddings=embed,
                image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
            )
            best = int(iou[0].argmax())
            low_res = low_res[:, best : best + 1].float()
            full = self.model.postprocess_masks(low_res, input_hw, orig)
        mask = (full[0, 0] > self.model.mask_threshold).cpu().numpy()
        return SliceMask(mask=mask, score=float(iou[0, best]), logits=low_res)


class Sam2Backend:
    """SAM 2 / 2.1 and MedSAM2: the image path and the memory-conditioned video step."""

    family = "sam2"

    def __init__(self, model: Any, device: torch.device):
        self.model = model.to(device).eval()
        self.device = device
        self.image_size = int(model.image_size)
        self._mean = torch.tensor(_IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(_IMAGENET_STD, device=device).view(1, 3, 1, 1)
        self._pos_embeds: list[torch.Tensor] | None = None
        self._feat_sizes: list[tuple[int, int]] | None = None

    def model_input(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) frames in [0, 255] -> the encoder's input: resized and normalised."""
        size = (self.image_size, self.image_size)
        images = F.interpolate(images / 255.0, size=size, mode="bilinear", align_corners=False, antialias=True)
        return (images - self._mean) / self._std

    def encode(self, frame: np.ndarray) -> Features:
        with torch.inference_mode(), autocast(self.device):
            backbone_out = self.model.forward_image(self.model_input(_grey_to_rgb(frame, self.device)))
            _, feats, pos, sizes = self.model._prepare_backbone_features(backbone_out)
        if self._pos_embeds is None:
            # Positional encodings depend only on the feature size: keep one copy, not one per slice.
            self._pos_embeds = [p.float() for p in pos]
            self._feat_sizes = [tuple(s) for s in sizes]
        return {"feats": list(feats), "orig_hw": torch.tensor(frame.shape)}

    def _point_inputs(self, prompts: SlicePrompts, orig: tuple[int, int]) -> dict[str, torch.Tensor] | None:
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
        xy = xy * torch.tensor([self.image_size / w, self.image_size / h], device=self.device)
        return {"point_coords": xy[None], "point_labels": torch.tensor([labels], dtype=torch.int32, device=self.device)}

    def step(
        self,
        features: Features,
        frame_index: int,
        *,
        prompts: SlicePrompts | None = None,
        prev_logits: torch.Tensor | None = None,
        output_dict: dict[str, dict[int, dict]] | None = None,
        num_frames: int = 1,
        is_cond: bool = False,
        run_mem_encoder: bool = True,
    ) -> tuple[dict[str, Any], SliceMask]:
        """One ``SAM2Base`` tracking step on an encoded slice.

        With ``is_cond`` the slice is a conditioning frame (prompts, no memory);
        otherwise it attends to the memories in ``output_dict``. Returns SAM2's frame
        output (memory features, object pointer, ...) and the slice mask.
        """
        if self._pos_embeds is None:
            raise RuntimeError("encode a slice before stepping")
        orig = _orig_hw(features)
        feats = [f.to(self.device, torch.float32) for f in features["feats"]]  # type: ignore[union-attr]
        point_inputs = self._point_inputs(prompts, orig) if prompts is not None else None
        if output_dict is None:
            output_dict = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        if prev_logits is not None:
            prev_logits = prev_logits.to(self.device, torch.float32)
        with torch.inference_mode(), autocast(self.device):
            out, sam_outputs, _, _ = self.model._track_step(
                frame_index, is_cond, feats, self._pos_embeds, self._feat_sizes, point_inputs,
                None, output_dict, num_frames, False, prev_logits,
            )
            _, _, ious, low_res, high_res, obj_ptr, object_score = sam_outputs
            out.update(pred_masks=low_res, obj_ptr=obj_ptr, object_score_logits=object_score)
            self.model._encode_memory_in_output(
                feats, self._feat_sizes, point_inputs, run_mem_encoder, high_res, object_score, out
            )
            full = F.interpolate(low_res.float(), size=orig, mode="bilinear", align_corners=False)
        mask = (full[0, 0] > 0).cpu().numpy()
        return out, SliceMask(mask=mask, score=float(ious.max()), logits=low_res.float())

    def decode(
        self, features: Features, prompts: SlicePrompts, mask_logits: torch.Tensor | None = None
    ) -> SliceMask:
        _, result = self.step(features, 0, prompts=prompts, prev_logits=mask_logits, is_cond=True,
                              run_mem_encoder=False)
        return result


def make_backend(model: torch.nn.Module, family: str, device: torch.device) -> SliceBackend:
    """The backend for a loaded model of ``family`` (``"sam"`` or ``"sam2"``)."""
    if family == "sam":
        return SamBackend(model, device)
    if family == "sam2":
        return Sam2Backend(model, device)
    raise ValueError(f"point prompts need a SAM or SAM2 model, not a {family} model")
