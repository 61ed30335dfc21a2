"""Tumour ROI mode (TAGS, methods.md section 1): the model sees a crop around the prompt.

For clicks (SAM, SAM2) the box is centred at ``(min + max) // 2`` of the clicks on each
axis and spans ``size_mm`` millimetres on each axis (rounded to whole voxels). For a box
model (LiteMedSAM, MedSAM) every slice is cropped in-plane to a square of ``context``
times the box's longer side (at least ``min_px`` pixels), centred on the box. Either way
a small lesion fills the model's input instead of being a few pixels of a whole slice;
the model's own resize upsamples the crop to its input size. Where the box leaves the
volume the crop is zero-padded; pasting back is the exact inverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_textseg.engine.interactive.prompts import PromptError

__all__ = ["BOX_ROI_CONTEXT", "BOX_ROI_MIN_PX", "Roi", "roi_around", "roi_around_boxes"]

# A box model's ROI: 3x the box, at least 64 px (benchmarks/bench_tumours.py measured 2, 3 and 4)
BOX_ROI_CONTEXT = 3.0
BOX_ROI_MIN_PX = 64


@dataclass(frozen=True)
class Roi:
    """A box in volume voxel coordinates; it may extend past the volume."""

    start: tuple[int, int, int]
    shape: tuple[int, int, int]
    volume_shape: tuple[int, int, int]

    def _clipped(self) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        src, dst = [], []
        for s, n, total in zip(self.start, self.shape, self.volume_shape, strict=True):
            lo, hi = max(s, 0), min(s + n, total)
            src.append(slice(lo, hi))
            dst.append(slice(lo - s, hi - s))
        return tuple(src), tuple(dst)

    def crop(self, volume: np.ndarray, fill: float = 0) -> np.ndarray:
        """The box's voxels, padded with ``fill`` outside the volume."""
        out = np.full(self.shape, fill, dtype=volume.dtype)
        src, dst = self._clipped()
        out[dst] = volume[src]
        return out

    def paste(self, crop: np.ndarray, into: np.ndarray | None = None) -> np.ndarray:
        """Write ``crop`` back at its place in a volume-shaped array (new zeros by default)."""
        if crop.shape != self.shape:
            raise ValueError(f"crop shape {crop.shape} is not the ROI shape {self.shape}")
        out = np.zeros(self.volume_shape, dtype=crop.dtype) if into is None else into
        src, dst = self._clipped()
        out[src] = crop[dst]
        return out

    def to_roi(self, points_zyx: np.ndarray) -> np.ndarray:
        """Volume (z, y, x) coordinates -> ROI coordinates."""
        return np.asarray(points_zyx, dtype=float) - np.array(self.start)

    def contains(self, points_zyx: np.ndarray) -> bool:
        local = self.to_roi(points_zyx)
        return bool(np.all((local >= -0.5) & (local <= np.array(self.shape) - 0.5)))


def roi_around(
    points_zyx: np.ndarray,
    spacing: tuple[float, float, float],
    size_mm: float | tuple[float, float, float],
    volume_shape: tuple[int, int, int],
) -> Roi:
    """The ROI of ``size_mm`` (one value or per axis) centred on the clicks."""
    points = np.asarray(points_zyx, dtype=float).reshape(-1, 3)
    if len(points) == 0:
        raise PromptError("ROI mode needs at least one click to centre the region on")
    sizes_mm = np.broadcast_to(np.asarray(size_mm, dtype=float), (3,))
    if np.any(sizes_mm <= 0):
        raise PromptError(f"the ROI size must be positive, got {size_mm} mm")
    voxels = np.maximum(1, np.rint(sizes_mm / np.asarray(spacing, dtype=float))).astype(int)
    lows, highs = np.rint(points.min(axis=0)).astype(int), np.rint(points.max(axis=0)).astype(int)
    centre = (lows + highs) // 2
    start = centre - voxels // 2
    roi = Roi(tuple(int(v) for v in start), tuple(int(v) for v in voxels), tuple(volume_shape))
    if not roi.contains(points):
        raise PromptError(
            f"the clicks span more than the {tuple(float(v) for v in sizes_mm)} mm ROI "
            f"({tuple(int(v) for v in voxels)} voxels); enlarge the ROI or click closer together"
        )
    return roi


def roi_around_boxes(
    boxes_yx: list[tuple[float, float, float, float]],
    volume_shape: tuple[int, int, int],
    context: float = BOX_ROI_CONTEXT,
    min_px: int = BOX_ROI_MIN_PX,
) -> Roi:
    """Every slice, cropped in-plane to a square of ``context`` x the boxes' longer side (at
    least ``min_px``) centred on them: the ROI of a box model. ``boxes_yx`` are (y0, x0, y1, x1)."""
    if not boxes_yx:
        raise PromptError(
            "box ROI mode crops around a box: draw one (B, or --box), or use the tumour ROI in mm "
            "(--roi-mm) for clicks"
        )
    if context < 1:
        raise PromptError(f"the ROI context must be at least 1 (the box itself), got {context}")
    corners = np.asarray(boxes_yx, dtype=float).reshape(-1, 2, 2).reshape(-1, 2)
    low, high = corners.min(axis=0), corners.max(axis=0)
    side = int(max(min_px, np.ceil(context * float(np.max(high - low)))))
    centre = np.rint((low + high) / 2).astype(int)
    y0, x0 = (int(c) - side // 2 for c in centre)
    return Roi((0, y0, x0), (int(volume_shape[0]), side, side), tuple(int(v) for v in volume_shape))
