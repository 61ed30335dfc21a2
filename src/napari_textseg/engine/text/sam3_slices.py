"""SAM3 / Medical SAM3 text labelling: concept prompts on every slice, linked into 3-D.

SAM3 takes the text itself (no CLIP, no points). On each axial slice the image model
returns scored masks for the concept; as in Medical SAM3, the single most confident
mask is kept (methods.md section 3). Slices are then linked into one object with the
rules of the upstream ``sam3`` video tracker: start from the most confident detection
(score >= 0.7), follow neighbouring slices while a detection matches the last kept
mask at IoU >= 0.5, and let a confident detection (>= 0.8) re-seed the track. The
output is the same :class:`~napari_textseg.engine.text.clip_sam.OrganResult` as the
CLIP path, so the merge, the widget and the files do not care which made it.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
import torch

from napari_textseg.core.text_prompts import TextTarget
from napari_textseg.engine.text.locate import Location
from napari_textseg.engine.text.protocol import OrganResult, Progress

__all__ = ["Sam3Labeller", "link_slices"]

MATCH_IOU = 0.5
NEW_SCORE = 0.7
RESEED_SCORE = 0.8


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def link_slices(
    masks: Sequence[np.ndarray | None], scores: Sequence[float]
) -> tuple[np.ndarray, float, int]:
    """One 3-D object from per-slice detections: (mask, mean score of kept slices, seed slice).

    ``masks[z]`` is the best detection on slice z (None: nothing detected). Returns an
    empty mask, 0.0 and -1 when no detection is confident enough to start a track.
    """
    shape = next((m.shape for m in masks if m is not None), (0, 0))
    volume = np.zeros((len(masks), *shape), dtype=bool)
    candidates = [z for z, m in enumerate(masks) if m is not None and scores[z] >= NEW_SCORE]
    if not candidates:
        return volume, 0.0, -1
    seed = max(candidates, key=lambda z: scores[z])
    volume[seed] = masks[seed]
    kept = [seed]
    for step in (1, -1):
        last = masks[seed]
        z = seed + step
        while 0 <= z < len(masks):
            mask = masks[z]
            if mask is None or not (scores[z] >= RESEED_SCORE or _iou(mask, last) >= MATCH_IOU):
                break
            volume[z], last = mask, mask
            kept.append(z)
            z += step
    return volume, float(np.mean([scores[z] for z in kept])), seed


class Sam3Labeller:
    """Text targets through a SAM3 image model, slice by slice.

    Parameters
    ----------
    model
        A SAM3 image model (:func:`napari_textseg.models.sam3.load_sam3`).
    frames
        The model-ready volume (0-255, window applied), axial slices first.
    """

    id = "sam3-slices"
    title = "SAM3 per slice (image model, slices linked)"

    def __init__(
        self, model: Any, frames: np.ndarray, device: torch.device, *, threshold: float = 0.5
    ):
        from sam3.model.sam3_image_processor import Sam3Processor

        self.processor = Sam3Processor(model, device=str(device), confidence_threshold=threshold)
        self.frames = frames

    def check_targets(self, targets: Sequence[TextTarget]) -> None:
        """SAM3 takes any concept phrase: nothing to refuse."""

    def _image_state(self, z: int) -> dict:
        frame = torch.as_tensor(np.clip(self.frames[z], 0, 255).astype(np.uint8))
        return self.processor.set_image(frame.expand(3, -1, -1))

    def detect(self, state: dict, text: str) -> tuple[np.ndarray | None, float]:
        """The most confident mask for ``text`` on an image state, and its score (None, 0 if
        none)."""
        state = self.processor.set_text_prompt(text, state)
        scores = state["scores"]
        if scores.numel() == 0:
            return None, 0.0
        best = int(torch.argmax(scores))
        return state["masks"][best, 0].cpu().numpy().astype(bool), float(scores[best])

    def run(
        self, targets: Sequence[TextTarget], values: Sequence[int]
    ) -> Generator[Progress | OrganResult, None, None]:
        """Yields :class:`Progress` per slice, then an :class:`OrganResult` per target.

        Slices are the outer loop: SAM3's image features of one 1008 px slice take tens
        of megabytes, so each slice is encoded once, asked for every target, and dropped.
        """
        n = len(self.frames)
        masks: list[list[np.ndarray | None]] = [[] for _ in targets]
        scores: list[list[float]] = [[] for _ in targets]
        for z in range(n):
            state = self._image_state(z)
            for k, target in enumerate(targets):
                mask, score = self.detect(state, target.name)
                masks[k].append(mask)
                scores[k].append(score)
            yield Progress(0, len(targets), ", ".join(t.name for t in targets), z + 1, n)
        for k, (target, value) in enumerate(zip(targets, values, strict=True)):
            volume, confidence, seed = link_slices(masks[k], scores[k])
            location = Location(seed, np.zeros((0, 3)), np.zeros(0, dtype=int), confidence)
            yield OrganResult(target, value, volume, confidence, location)
