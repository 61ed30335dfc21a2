"""One non-overlapping label map from per-target masks (Medical SAM3's max-confidence merge).

Each target comes with a boolean mask and a confidence: one number for the whole
object, or a per-voxel map. Where targets overlap, the voxel goes to the most confident;
ties go to the target listed first. A target re-run replaces only its own voxels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["TargetMask", "merge_by_confidence", "merge_into"]


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
            raise ValueError(
                f"{target.name}: mask shape {mask.shape} is not the volume's {tuple(shape)}"
            )
        score = np.broadcast_to(np.asarray(target.confidence, dtype=np.float32), shape)
        wins = mask & (score > best)
        labels[wins] = target.value
        best[wins] = score[wins]
    return labels


def merge_into(labels: np.ndarray, confidence: dict[int, float], target: TargetMask) -> np.ndarray:
    """``labels`` with ``target`` written in by the same rule; the input is not changed.

    The target's old voxels are cleared first (a re-run replaces only its own label).
    It then takes every voxel of its mask that is background or belongs to a less
    confident label. Labels missing from ``confidence`` (drawn by hand, or from a
    file) count as certain and are never overwritten.
    """
    labels = np.asarray(labels)
    mask = np.asarray(target.mask, dtype=bool)
    if mask.shape != labels.shape:
        raise ValueError(
            f"{target.name}: mask shape {mask.shape} is not the label map's {labels.shape}"
        )
    if target.value <= 0 or target.value > np.iinfo(labels.dtype).max:
        raise ValueError(f"label value {target.value} does not fit a {labels.dtype} label map")
    out = np.where(labels == target.value, 0, labels).astype(labels.dtype, copy=False)
    values = [int(v) for v in np.unique(out[mask]) if v != 0]
    beaten = [
        v for v in values if v in confidence and float(confidence[v]) < float(target.confidence)
    ]
    out[mask & np.isin(out, [0, *beaten])] = target.value
    return out
