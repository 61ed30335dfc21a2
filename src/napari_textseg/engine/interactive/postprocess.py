"""Post-processing: SAM2's small-hole fill of slice logits; filling holes and keeping what is
connected to the positive clicks in 3D masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

__all__ = ["PostProcessing", "fill_holes", "fill_small_holes", "keep_clicked_components"]


@dataclass(frozen=True)
class PostProcessing:
    """Clean-up applied to the 3-D result."""

    fill_holes: bool = False
    keep_clicked: bool = False


_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def fill_small_holes(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """SAM2VideoPredictor's ``fill_hole_area``: background components (logit <= 0) of at most
    ``max_area`` pixels, 8-connected, set to the logit 0.1.

    SAM2 does this with a CUDA extension and skips it, with a warning, where the
    extension is missing (every CPU install); this gives the same result on any device.
    ``logits`` is (N, 1, H, W); the same tensor comes back when there is no such hole.
    """
    if max_area <= 0:
        return logits
    values = logits.detach().cpu().numpy()  # one copy to the host; the rest is NumPy
    holes = np.zeros(values.shape, dtype=bool)
    for index in np.ndindex(values.shape[:2]):
        labelled, count = ndimage.label(values[index] <= 0, structure=_EIGHT_CONNECTED)
        if count:
            small = np.bincount(labelled.ravel()) <= max_area
            small[0] = False
            if small.any():
                holes[index] = small[labelled]
    if not holes.any():
        return logits
    return torch.from_numpy(np.where(holes, np.float32(0.1), values).astype(values.dtype)).to(
        logits.device
    )


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
