"""Checks and guesses shared by the readers."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from napari_textseg.core.errors import ReadError

__all__ = ["check_file", "count_nan", "guess_is_labels", "guess_medical_modality"]

_LABEL_NAME = re.compile(r"(label|labels|seg|segmentation|mask|masks)(?![a-z])", re.IGNORECASE)


def check_file(path: str | os.PathLike) -> Path:
    """The path, after checking it is a non-empty regular file."""
    path = Path(path)
    if not path.exists():
        raise ReadError(f"{path}: no such file")
    if not path.is_file():
        raise ReadError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ReadError(f"{path.name}: the file is empty (0 bytes)")
    return path


def guess_medical_modality(data: np.ndarray) -> str:
    """``"CT"`` when values reach air in Hounsfield units (<= -500), else ``"MR"``.

    MR intensities are arbitrary but non-negative; CT stores air near -1000 HU. DICOM
    series use their Modality tag instead of this guess.
    """
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        low = np.nanmin(arr) if np.isfinite(arr).any() else 0.0
    else:
        low = arr.min() if arr.size else 0
    return "CT" if low <= -500 else "MR"


def guess_is_labels(path: Path, data: np.ndarray, has_sidecar: bool) -> bool:
    """An integer volume is a label map when it has a names sidecar or a labels-like name."""
    if np.asarray(data).dtype.kind not in "iub":
        return False
    return has_sidecar or bool(_LABEL_NAME.search(path.name))


def count_nan(data: np.ndarray, name: str) -> int:
    """Number of NaN voxels; warns (once, with the count) when there are any."""
    arr = np.asarray(data)
    if arr.dtype.kind != "f":
        return 0
    count = int(np.isnan(arr).sum())
    if count:
        warnings.warn(
            f"{name}: {count} voxel(s) are NaN; they are shown empty and fed to the models as 0",
            stacklevel=3,
        )
    return count
