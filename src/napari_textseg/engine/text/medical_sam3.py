"""Medical-SAM3 3-D: the released text-prompted volume policy, as a text backend.

The policy is the one of ``medical/inference_3d.py`` in AIM-Research-Lab/Medical-SAM3
(its defaults ``--clip-length 4 --fusion pixel_score``):

- the volume is a video of independent four-slice clips; for each clip the tracker
  state is reset, the text is prompted at the clip's first slice, and the SAM3 video
  model propagates it forward through the clip only;
- on each slice the masks of all tracked objects are united;
- targets are fused per voxel by mask probability: a voxel takes a target where that
  target's probability beats 0.5 and every earlier target's there;
- non-uint8 slices are min-max scaled per slice to 0-255 after windowing (CT: our
  soft-tissue window first, as its docs ask).

The model is built with the Medical-SAM3 repository's own ``sam3`` (a builder with
``training_mode`` and a 504 px image size, which PyPI ``sam3`` 0.1.4 lacks), and its
continuous mask probabilities come from that repository's own output hook. This path
needs a CUDA GPU and is not run on CPU here: ``benchmarks/gpu_check_medical_sam3.py``
compares it with the reference ``infer_volume`` on a GPU machine (docs/text.md).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from napari_textseg.core.errors import InputError
from napari_textseg.core.intensity import normalize_for_model
from napari_textseg.core.text_prompts import TextTarget
from napari_textseg.engine.text.protocol import OrganResult, Progress, TextVolume, check_text_volume

__all__ = [
    "CLIP_LENGTH",
    "MedicalSam3Backend",
    "clip_windows",
    "fuse_pixel_scores",
    "slice_frames",
]

CLIP_LENGTH = 4
PRIORITY_FLOOR = 0.5  # pixel_score fusion starts every voxel at this probability


def clip_windows(depth: int, clip_length: int = CLIP_LENGTH) -> list[tuple[int, int]]:
    """``[start, end)`` of each independent clip: 0-4, 4-8, ..., the last one shorter."""
    if depth < 1 or clip_length < 1:
        raise ValueError("depth and clip length must be positive")
    return [(start, min(depth, start + clip_length)) for start in range(0, depth, clip_length)]


def slice_frames(volume: TextVolume) -> np.ndarray:
    """(z, y, x, 3) uint8 frames: windowed (CT) or percentile-scaled, then min-max per slice."""
    data = normalize_for_model(
        np.asarray(volume.data, dtype=np.float32), volume.modality, "soft_tissue"
    )
    data = np.nan_to_num(data.astype(np.float32, copy=False))
    low = data.min(axis=(1, 2), keepdims=True)
    high = data.max(axis=(1, 2), keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    scaled = np.where(high > low, (data - low) / span, 0.0)
    frames = np.clip(scaled * 255.0, 0, 255).astype(np.uint8)
    return np.repeat(frames[..., None], 3, axis=-1)


def fuse_pixel_scores(
    labels: np.ndarray, priority: np.ndarray, mask: np.ndarray, scores: np.ndarray, value: int
) -> None:
    """Write ``value`` where ``mask`` holds and its probability beats what is there (in place)."""
    update = mask & (scores > priority)
    priority[update] = scores[update]
    labels[update] = value


class MedicalSam3Backend:
    """Text targets through the Medical-SAM3 video model, clip by clip (see the module
    docstring)."""

    id = "medical-sam3"
    title = "Medical-SAM3 3-D (trained, GPU)"

    def __init__(self, model: Any, volume: TextVolume, *, clip_length: int = CLIP_LENGTH):
        check_text_volume(volume.data, "Medical-SAM3")
        self.model = model
        self.volume = volume
        self.clip_length = clip_length

    def check_targets(self, targets: Sequence[TextTarget]) -> None:
        """Microscopy is outside what Medical-SAM3 was trained on."""
        if self.volume.modality == "microscopy":
            raise InputError(
                "Medical-SAM3 was trained on radiology images; use the CLIP + SAM backend "
                "for microscopy"
            )

    def _frames_for_model(self) -> list:
        from PIL import Image

        frames = [Image.fromarray(frame) for frame in slice_frames(self.volume)]

        class _Frames(list):  # the video predictor reads the output size from this attribute
            original_size_hw = frames[0].size[::-1]

        return _Frames(frames)

    def _predict(
        self, state: Any, text: str
    ) -> Generator[tuple[int, int], None, tuple[np.ndarray, np.ndarray]]:
        """One target through every clip: (mask, probability) per slice; yields (done, total)."""
        depth, height, width = self.volume.data.shape
        mask = np.zeros((depth, height, width), dtype=bool)
        scores = np.zeros((depth, height, width), dtype=np.float32)
        windows = clip_windows(depth, self.clip_length)
        for done, (start, end) in enumerate(windows, 1):
            self.model.reset_state(state)
            self.model.add_prompt(inference_state=state, frame_idx=start, text_str=text)
            for z, output in self.model.propagate_in_video(
                state, start_frame_idx=start, max_frame_num_to_track=end - start - 1, reverse=False
            ):
                if output is None or not start <= int(z) < end:
                    continue
                masks = np.asarray(output.get("out_binary_masks"), dtype=bool)
                if masks.size == 0:
                    continue
                mask[int(z)] |= masks.reshape(-1, height, width).any(axis=0)
                if output.get("out_mask_score_source") != "mask_logits":
                    raise RuntimeError(
                        "Medical-SAM3 gave no mask probabilities; its output hook is not installed"
                    )
                scores[int(z)] = np.asarray(output["out_mask_scores"], dtype=np.float32).max(axis=0)
            yield done, len(windows)
        return mask, scores

    def run(
        self, targets: Sequence[TextTarget], values: Sequence[int]
    ) -> Generator[Progress | OrganResult, None, None]:
        """One target after another, clip by clip; yields progress per clip and an organ per target.

        Each organ's mask is what pixel_score fusion gives it against the organs before it,
        so merging the results in order reproduces the released label map.
        """
        import torch

        self.check_targets(targets)
        shape = self.volume.data.shape
        labels = np.zeros(shape, dtype=np.uint16)
        priority = np.full(shape, PRIORITY_FLOOR, dtype=np.float32)
        with torch.inference_mode():
            state = self.model.init_state(resource_path=self._frames_for_model())
            for index, (target, value) in enumerate(zip(targets, values, strict=True)):
                steps = self._predict(state, target.name)
                while True:
                    try:
                        done, total = next(steps)
                    except StopIteration as stop:
                        mask, scores = stop.value
                        break
                    yield Progress(index, len(targets), target.name, done, total)
                fuse_pixel_scores(labels, priority, mask, scores, value)
                won = labels == value
                confidence = float(scores[won].mean()) if won.any() else 0.0
                yield OrganResult(target, value, won, confidence)
