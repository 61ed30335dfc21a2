"""Segment Anything (v1) and MedSAM behind the slice interface."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# Imported up front on purpose: torchvision pulls in torch._dynamo and triton, and a
# first import of those while another thread runs torch ops (the embedding prefetch)
# can crash the process.
import torchvision  # noqa: F401

from napari_textseg.engine.interactive.features import Features
from napari_textseg.engine.interactive.prompts import SlicePrompts
from napari_textseg.engine.interactive.slice_model import (
    SliceMask,
    SliceModel,
    as_8bit,
    grey_to_rgb,
    model_tag,
    orig_hw,
    resize_longest_side,
    sam_decoder,
)
from napari_textseg.models.device import autocast

__all__ = ["SAM_PREPROCESSING", "SamSliceModel"]

SAM_PREPROCESSING = ("sam", "medsam")


class SamSliceModel(SliceModel):
    """Segment Anything (v1), as ``SamPredictor`` runs it, and MedSAM, as its own
    ``MedSAM_Inference.py`` runs it (``preprocess="medsam"``).

    SAM: the longer side resized to the input size, SAM's pixel mean and std, padding,
    coordinates scaled by the same factor. MedSAM: the slice as 8-bit, resized to a
    square input (bicubic, anti-aliased), min-max scaled to [0, 1] without SAM's mean
    and std, coordinates scaled per axis, low-res logits upsampled straight to the slice.
    """

    family = "sam"
    title = "SAM"

    def __init__(
        self, model: Any, device: torch.device, preprocess: str = "sam", box_shift: int = 5
    ):
        from segment_anything.utils.transforms import ResizeLongestSide

        self._take(model, device, preprocess, SAM_PREPROCESSING)
        # MedSAM propagates a box alone with its own 3-D box recipe (medsam_infer_3Dbox_adrenal.py)
        self.box_recipe = preprocess == "medsam"
        self.box_shift = int(box_shift)
        # after an empty slice: the nearest slice's box, as that script
        self.box_fallback = "previous"
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
            as_8bit(frame), size, order=3, preserve_range=True, anti_aliasing=True
        ).astype(np.uint8)
        scaled = (square - square.min()) / np.clip(
            float(square.max()) - float(square.min()), 1e-8, None
        )
        return grey_to_rgb(scaled.astype(np.float32), self.device)

    def encode(self, frame: np.ndarray) -> Features:
        if self.preprocess == "medsam":
            input_hw, image = (self.image_size, self.image_size), self._medsam_input(frame)
        else:
            input_hw = self._transform.get_preprocess_shape(*frame.shape, self.image_size)
            image = self.model_input(grey_to_rgb(frame, self.device))
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
