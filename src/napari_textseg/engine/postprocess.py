"""Post-processing of 3D masks: fill holes, keep what is connected to the positive clicks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["fill_holes", "keep_clicked_components"]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed holes slice by slice (2-D) so open tubular structures stay open."""
    out = np.empty_like(mask, dtype=bool)
    for z in range(mask.shape[0]):
        out[z] = ndimage.binary_fill_holes(mask[z])
    return out


def keep_clicked_components(mask: np.ndarray, positive_zyx: np.ndarray) -> np.ndarray:
    """Keep only the 3-D connected components (26-connectivity) that hold a positive click.

    With no click inside the mask, the mask is returned unchanged rather than emptied.
    """
    labelled, count = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return mask.astype(bool)
    idx = np.rint(np.asarray(positive_zyx, dtype=float).reshape(-1, 3)).astype(int)
    idx = np.clip(idx, 0, np.array(mask.shape) - 1)
    keep = {int(labelled[tuple(p)]) for p in idx} - {0}
    if not keep:
        return mask.astype(bool)
    return np.isin(labelled, list(keep))
