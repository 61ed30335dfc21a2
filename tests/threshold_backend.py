"""A classical slice segmenter for testing the propagation logic deterministically.

It implements the engine's slice protocol without a neural network: the mask is the
connected region above a threshold that holds the positive points (minus regions
holding negative points), inside the box if one is given; negative points alone trim
the slice's previous mask. On synthetic volumes with
known objects its masks are exact, so pass order, stop rules, slice ranges,
corrections and ROI paste-back can be checked voxel for voxel.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from napari_textseg.engine.interactive.slice_model import SliceMask, SliceModel


class ThresholdBackend(SliceModel):
    family = "threshold"
    device = torch.device("cpu")
    cache_tag = "threshold"

    def __init__(self, threshold: float = 127.5):
        self.threshold = threshold
        self.encoded: list[int] = []  # ids of frames encoded, to count model calls

    def encode(self, frame: np.ndarray):
        self.encoded.append(id(frame))
        return {
            "frame": torch.from_numpy(np.array(frame, dtype=np.float32)),
            "orig_hw": torch.tensor(frame.shape),
        }

    def decode(self, features, prompts, mask_logits=None):
        frame = features["frame"].float().numpy()
        regions, _ = ndimage.label(frame > self.threshold)
        keep = np.zeros(frame.shape, dtype=bool)
        if mask_logits is not None and not prompts.has_positive:
            keep = mask_logits[0, 0].numpy() > 0  # a correction: trim the previous mask
        for (y, x), label in zip(
            np.rint(prompts.points_yx).astype(int), prompts.labels, strict=True
        ):
            if 0 <= y < frame.shape[0] and 0 <= x < frame.shape[1] and regions[y, x]:
                region = regions == regions[y, x]
                keep = keep | region if label == 1 else keep & ~region
        if prompts.box is not None:
            y0, x0, y1, x1 = (int(round(v)) for v in prompts.box)
            inside = np.zeros_like(keep)
            inside[max(y0, 0) : y1, max(x0, 0) : x1] = True
            if not (prompts.labels == 1).any():
                keep = np.isin(regions, np.unique(regions[inside & (regions > 0)]))
            keep &= inside
        logits = torch.from_numpy(np.where(keep, 10.0, -10.0).astype(np.float32))[None, None]
        return SliceMask(mask=keep, score=1.0, logits=logits)


def spheres(shape=(40, 64, 64), centres=((15, 32, 32),), radius=6.0, value=255.0):
    """An intensity volume with bright z-cylinders (height 2 * radius + 1) and their masks.

    Cylinders rather than balls: their cross-section does not shrink to a point, so
    a propagation that works recovers them exactly, tips included.
    """
    zz, yy, xx = np.indices(shape)
    volume = np.zeros(shape, dtype=np.float32)
    masks = []
    for cz, cy, cx in centres:
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2) & (np.abs(zz - cz) <= radius)
        volume[mask] = value
        masks.append(mask)
    return volume, masks
