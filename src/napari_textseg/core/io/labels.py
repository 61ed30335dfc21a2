"""Checks and dtype choice for label maps about to be written."""

from __future__ import annotations

import numpy as np

from napari_textseg.core.errors import WriteError

__all__ = ["smallest_label_dtype", "validate_labels"]

_CANDIDATES = (np.uint8, np.uint16, np.uint32)


def smallest_label_dtype(data: np.ndarray) -> np.dtype:
    """The smallest unsigned integer dtype that holds every label value.

    Raises :class:`WriteError` for non-integer data, negative values, or values beyond
    uint32 (which 3D Slicer, ITK-SNAP and Fiji cannot read back as labels).
    """
    arr = np.asarray(data)
    if arr.dtype == bool:
        return np.dtype(np.uint8)
    if arr.dtype.kind not in "iu":
        raise WriteError(f"labels must be integers, got dtype {arr.dtype}")
    if arr.size == 0:
        return np.dtype(np.uint8)
    low, high = int(arr.min()), int(arr.max())
    if low < 0:
        raise WriteError(f"labels must be >= 0, found the value {low}")
    for dtype in _CANDIDATES:
        if high <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise WriteError(
        f"the largest label value {high} does not fit in 32 bits; renumber the labels "
        "(e.g. skimage.segmentation.relabel_sequential) before export"
    )


def validate_labels(data: np.ndarray, expected_shape: tuple[int, ...] | None) -> np.ndarray:
    """Return ``data`` as the smallest fitting dtype, after checking its shape."""
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise WriteError(f"labels must be 3-D (z, y, x), got shape {arr.shape}")
    if expected_shape is not None and tuple(arr.shape) != tuple(expected_shape):
        raise WriteError(
            f"labels shape {tuple(arr.shape)} differs from the source image shape "
            f"{tuple(expected_shape)}; they cannot be written onto the source grid"
        )
    dtype = smallest_label_dtype(arr)
    return arr.astype(dtype, copy=False)
