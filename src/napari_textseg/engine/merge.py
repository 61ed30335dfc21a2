"""One non-overlapping label map from per-target masks (Medical SAM3's max-confidence merge).

Each target comes with a boolean mask and a confidence: one number for the whole
object, or a per-voxel map. Where targets overlap, the voxel goes to the most confident;
ties go to the target listed first. A target re-run replaces only its own voxels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["TargetMask", "merge_by_confidence"]


@dataclass
class TargetMask:
    """One segmented target: its label value, name, mask and confidence."""

    value: int
    name: str
    mask: np.ndarray
    confidence: float | np.ndarray


def merge_by_confidence(
    targets: Sequence[TargetMask], shape: tuple[int, ...], dtype: type = np.uint16
) -> np.ndarray:
    """A label map of ``shape`` where each voxel holds the value of its most confident target.

    Raises
    ------
    ValueError
        For a mask of another shape, a value of 0 or a value used twice.
    """
    values = [t.value for t in targets]
    if any(v <= 0 for v in values) or len(set(values)) != len(values):
        raise ValueError(f"label values must be positive and distinct, got {values}")
    best = np.full(shape, -np.inf, dtype=np.float32)
    labels = np.zeros(shape, dtype=dtype)
    for target in targets:
        mask = np.asarray(target.mask, dtype=bool)
        if mask.shape != tuple(shape):
            raise ValueError(f"{target.name}: mask shape {mask.shape} is not the volume's {tuple(shape)}")
        score = np.broadcast_to(np.asarray(target.confidence, dtype=np.float32), shape)
        wins = mask & (score > best)
        labels[wins] = target.value
        best[wins] = score[wins]
    return labels
