"""Overlap metrics between a predicted and a reference mask."""

from __future__ import annotations

import numpy as np

__all__ = ["dice"]


def dice(pred: np.ndarray, reference: np.ndarray) -> float:
    """Dice coefficient of two boolean masks of the same shape; 1.0 when both are empty."""
    pred, reference = np.asarray(pred, dtype=bool), np.asarray(reference, dtype=bool)
    if pred.shape != reference.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {reference.shape}")
    total = int(pred.sum()) + int(reference.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, reference).sum()) / total
