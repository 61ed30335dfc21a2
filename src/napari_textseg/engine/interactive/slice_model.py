"""The slice-model interface: what every promptable model family gives the engine.

A slice model encodes one slice once and decodes many prompts on it. Its capabilities
(box-only, memory, a volume preparation of its own, MedSAM's box recipe) are declared
on :class:`SliceModel` with defaults, so the engine asks, never probes. Frames come
from memory as float32 in [0, 255] (the chosen intensity window), and are resized on
the model's device in floating point: no 8-bit rounding, no JPEG.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from napari_textseg.core.intensity import Window, normalize_for_model
from napari_textseg.engine.interactive.features import Features
from napari_textseg.engine.interactive.prompts import SlicePrompts
from napari_textseg.models.encoder_runtime import Encoder, module_hash
from napari_textseg.models.registry import BOX_ONLY_FAMILIES

__all__ = [
    "BOX_ONLY_MESSAGE",
    "SliceMask",
    "SliceModel",
    "as_8bit",
    "grey_to_rgb",
    "model_tag",
    "orig_hw",
    "resize_longest_side",
    "sam_decoder",
]


BOX_ONLY_MESSAGE = (
    "{model} is a box-prompted model (trained on boxes; points give no usable mask): draw a box "
    "with the panel's Box tool (B) and press S, or give --box Z,Y0,X0,Y1,X1 on the command line "
    "(or choose a SAM/SAM2 model for points)"
)


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


class SliceModel(ABC):
    """What the engine needs from a promptable model family, and what the family can do.

    Subclasses set ``family`` and implement :meth:`encode`, :meth:`decode` and
    :attr:`cache_tag`; the capabilities below default to a point-and-box model without
    memory that reads the shared intensity window.
    """

    family: ClassVar[str] = ""
    has_memory: ClassVar[bool] = False  # SAM2's memory bank: memory propagation, ranked policy
    native_3d: ClassVar[bool] = False  # segments the whole volume at once (nnInteractive)
    box_recipe: bool = False  # boxes alone propagate with MedSAM's 3-D box recipe
    # the recipe's box after an empty slice: "prompted" or "previous"
    box_fallback: str = "prompted"
    # why the encoder does not run where it was asked (None: it does)
    runtime_note: str | None = None
    encoder: Encoder | None = None  # a separately compiled image encoder (LiteMedSAM), if any
    title: str = "this model"  # its name in messages
    device: torch.device

    def _take(self, model: Any, device: torch.device, preprocess: str, known: tuple[str, ...]):
        """Hold ``model`` on ``device`` in eval mode, with one of the ``known`` preprocessings."""
        if preprocess not in known:
            raise ValueError(
                f"unknown {self.title} preprocessing {preprocess!r}; use one of {', '.join(known)}"
            )
        self.model = model.to(device).eval()
        self.device = device
        self.preprocess = preprocess

    @property
    def where(self) -> str:
        """Where it runs, in words (a device; nnInteractive may name a server)."""
        return str(self.device)

    @property
    def box_only(self) -> bool:
        """Trained on boxes alone: points give no usable mask (the model card says the same)."""
        return self.family in BOX_ONLY_FAMILIES

    @property
    def takes_points(self) -> bool:
        return not self.box_only

    def prepare_volume(self, data: np.ndarray, modality: str, window: str | Window) -> np.ndarray:
        """The volume as this model reads it: [0, 255] float32 through the intensity window
        (a model trained on other preprocessing overrides this)."""
        return normalize_for_model(data, modality, window)

    @property
    @abstractmethod
    def cache_tag(self) -> str:
        """What makes this model's embeddings what they are (weights, runtime, precision,
        device)."""

    @abstractmethod
    def encode(self, frame: np.ndarray) -> Features:
        """Image features of a (H, W) float32 frame in [0, 255]."""

    @abstractmethod
    def decode(
        self, features: Features, prompts: SlicePrompts, mask_logits: torch.Tensor | None = None
    ) -> SliceMask:
        """The mask for ``prompts`` on an encoded slice: one decoder call."""


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


def as_8bit(frame: np.ndarray) -> np.ndarray:
    """A [0, 255] float frame as the 8-bit image the MedSAM and MedSAM2 scripts read."""
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def grey_to_rgb(frame: np.ndarray, device: torch.device) -> torch.Tensor:
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
