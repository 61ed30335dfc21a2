"""Checks and guesses shared by the readers."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from napari_textseg.core.errors import InputWarning, ReadError

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


def check_fits_in_memory(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse, before reading it, a volume larger than this machine's free memory: reading
    it would swap for minutes or be killed, taking the open session with it."""
    needed = int(np.prod(shape, dtype=np.float64) * np.dtype(dtype).itemsize)
    free = _free_memory()
    if free is not None and needed > free:
        gib = 1024**3
        raise ReadError(
            f"{path.name} needs {needed / gib:.1f} GiB in memory ({' x '.join(map(str, shape))} "
            "voxels "
            f"of {np.dtype(dtype).name}) and {free / gib:.1f} GiB is free: crop or downsample it "
            "first "
            "(e.g. with SimpleITK or Fiji), or use a machine with more memory"
        )


def _free_memory() -> int | None:
    try:
        import psutil
    except ImportError:  # psutil comes with napari; the engine alone may lack it
        return None
    return int(psutil.virtual_memory().available)


def count_nan(data: np.ndarray, name: str) -> int:
    """Number of NaN voxels; warns (once, with the count) when some, not all, are NaN."""
    arr = np.asarray(data)
    if arr.dtype.kind != "f":
        return 0
    count = int(np.isnan(arr).sum())
    if (
        count and count < arr.size
    ):  # all NaN: the refusal (or info's row) that follows says it, alone
        voxels = "1 voxel is" if count == 1 else f"{count} voxels are"
        warnings.warn(
            f"{name}: {voxels} NaN; they are shown empty and fed to the models as 0",
            InputWarning,
            stacklevel=3,
        )
    return count
