"""LiteMedSAM behind the slice protocol, step for step as ``CVPR24_LiteMedSAM_infer.py`` runs it.

- Volume: the challenge's uint8 preprocessing
(:func:`~napari_textseg.core.intensity.challenge_uint8`).
- Slice: grey to 3 channels, longest side to 256 with OpenCV's INTER_AREA, min-max to
  [0, 1], zero-padded bottom/right to 256 x 256, then the TinyViT encoder (64 x 64 grid).
- Prompt: a box only, scaled by 256 / max(H, W) and truncated to int.
- Output: one mask; logits cropped to the resized size, bilinear to (H, W), sigmoid > 0.5.
- Propagation (:class:`~.propagate.BoxPropagator`): the next slice's box is the bounding
  box of the previous mask, resized the same way, padded, widened by 3 px.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from napari_textseg.core.intensity import Window, challenge_uint8
from napari_textseg.engine.interactive.features import Features
from napari_textseg.engine.interactive.prompts import PromptError, SlicePrompts
from napari_textseg.engine.interactive.slice_model import (
    BOX_ONLY_MESSAGE,
    SliceMask,
    SliceModel,
    model_tag,
    orig_hw,
    sam_decoder,
)
from napari_textseg.models.device import autocast
from napari_textseg.models.encoder_runtime import Encoder, make_encoder

__all__ = ["LiteMedSamSliceModel", "resize_longest_side_area"]


def _cv2() -> Any:
    import cv2  # opencv-python-headless: INTER_AREA as the released script computes it

    return cv2


def resize_longest_side_area(image: np.ndarray, target: int) -> np.ndarray:
    """The script's ``resize_longest_side``: OpenCV INTER_AREA, new size rounded half up."""
    h, w = image.shape[:2]
    scale = target * 1.0 / max(h, w)
    new_w, new_h = int(w * scale + 0.5), int(h * scale + 0.5)
    cv2 = _cv2()
    return cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)


def _pad(image: np.ndarray, target: int) -> np.ndarray:
    pad = [(0, target - image.shape[0]), (0, target - image.shape[1])] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, pad)


class LiteMedSamSliceModel(SliceModel):
    """LiteMedSAM (or any MedSAM-Lite architecture): encode a slice, decode a box.

    ``box_shift`` widens a propagated box on each side, in model pixels (the script's 3).
    ``encoder`` runs the image encoder (eager PyTorch by default; OpenVINO from
    :func:`~napari_textseg.models.encoder_runtime.make_encoder`).
    """

    family = "litemedsam"

    def __init__(
        self,
        model: Any,
        device: torch.device,
        box_shift: int = 3,
        title: str = "LiteMedSAM",
        encoder: Encoder | None = None,
    ):
        self.model = model.to(device).eval()
        self.device = device
        self.image_size = int(model.prompt_encoder.input_image_size[0])
        self.box_shift = int(box_shift)
        self.title = title
        self.encoder = encoder or make_encoder(
            self.model.image_encoder, self.image_size, device, "torch"
        )
        self.runtime_note = self.encoder.note

    @cached_property
    def cache_tag(self) -> str:
        return model_tag(
            self.family, self.model, self.device, self.encoder.tag, f"{self.image_size}px"
        )

    def prepare_volume(self, data: np.ndarray, modality: str, window: str | Window) -> np.ndarray:
        """The volume as the challenge's uint8 (its window for CT)."""
        return challenge_uint8(data, modality, window)

    def model_input(self, frame: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """A (H, W) uint8 slice -> the encoder's (1, 3, 256, 256) input and the resized size."""
        grey = np.asarray(frame)
        if grey.ndim != 2:
            raise ValueError(f"a slice must be 2-D, got shape {grey.shape}")
        if grey.dtype != np.uint8:  # an ROI crop padded with float zeros
            grey = np.clip(grey, 0, 255).astype(np.uint8)
        small = resize_longest_side_area(np.repeat(grey[:, :, None], 3, axis=-1), self.image_size)
        new_hw = (int(small.shape[0]), int(small.shape[1]))
        scaled = (small - small.min()) / np.clip(small.max() - small.min(), a_min=1e-8, a_max=None)
        padded = _pad(scaled, self.image_size)
        image = torch.tensor(padded).float().permute(2, 0, 1).unsqueeze(0).to(self.device)
        return image, new_hw

    def encode(self, frame: np.ndarray) -> Features:
        image, new_hw = self.model_input(frame)
        embed = self.encoder(image)
        return {
            "embed": embed,
            "input_hw": torch.tensor(new_hw),
            "orig_hw": torch.tensor(np.shape(frame)),
        }

    def model_box(
        self, box_yx: tuple[float, float, float, float], orig: tuple[int, int]
    ) -> np.ndarray:
        """A slice box (y0, x0, y1, x1) -> the script's [x0, y0, x1, y1] at 256 px, truncated to
        int."""
        y0, x0, y1, x1 = box_yx
        ratio = self.image_size / max(orig)
        return np.array([int(v * ratio) for v in (x0, y0, x1, y1)], dtype=np.int64)

    def box_from_mask(self, mask: np.ndarray) -> np.ndarray | None:
        """The script's ``get_bbox256``: the previous mask resized and padded as a slice,
        its bounding box widened by ``box_shift``; ``None`` where the resized mask is empty."""
        small = resize_longest_side_area(np.asarray(mask, dtype=np.uint8), self.image_size)
        if small.max() == 0:
            return None
        padded = _pad(small, self.image_size)
        ys, xs = np.where(padded > 0)
        h, w = padded.shape
        s = self.box_shift
        return np.array(
            [max(0, xs.min() - s), max(0, ys.min() - s), min(w, xs.max() + s), min(h, ys.max() + s)]
        )

    def decode_model_box(self, features: Features, box: np.ndarray) -> SliceMask:
        """One decoder call for a box already in model pixels (x0, y0, x1, y1)."""
        orig = orig_hw(features)
        new_h, new_w = (int(v) for v in features["input_hw"])  # type: ignore[union-attr]
        embed = features["embed"].to(self.device, torch.float32)  # type: ignore[union-attr]
        boxes = torch.as_tensor(
            np.asarray(box)[None, None, ...], dtype=torch.float, device=self.device
        )
        with torch.inference_mode(), autocast(self.device):
            low_res, iou = sam_decoder(self.model, embed, None, boxes, None, multimask=False)
            low_res = low_res.float()
            full = F.interpolate(
                low_res[..., :new_h, :new_w], size=orig, mode="bilinear", align_corners=False
            )
            mask = (torch.sigmoid(full)[0, 0] > 0.5).cpu().numpy()
        return SliceMask(mask=mask, score=float(iou[0, 0]), logits=low_res)

    def decode(
        self, features: Features, prompts: SlicePrompts, mask_logits: torch.Tensor | None = None
    ) -> SliceMask:
        """The mask for a box; points are refused (the model never saw one). ``mask_logits``
        are not used: the released recipe prompts with the box alone."""
        if len(prompts.labels) or prompts.box is None:
            raise PromptError(BOX_ONLY_MESSAGE.format(model=self.title))
        return self.decode_model_box(features, self.model_box(prompts.box, orig_hw(features)))
