"""One entry point that reads any supported file or DICOM folder into a :class:`Volume`."""

from __future__ import annotations

import os
from pathlib import Path

from napari_textseg.core.errors import ReadError
from napari_textseg.core.io.atomic import split_suffix
from napari_textseg.core.io.dicom import read_dicom_series
from napari_textseg.core.io.nifti import read_nifti
from napari_textseg.core.io.nrrd import read_nrrd
from napari_textseg.core.io.tiff import read_tiff
from napari_textseg.core.volume import Volume

__all__ = ["SUPPORTED_SUFFIXES", "is_supported", "read_volume"]

_READERS = {
    ".nii": read_nifti,
    ".nii.gz": read_nifti,
    ".nrrd": read_nrrd,
    ".seg.nrrd": read_nrrd,
    ".nhdr": read_nrrd,
    ".tif": read_tiff,
    ".tiff": read_tiff,
}
SUPPORTED_SUFFIXES = tuple(_READERS)


def _suffix(path: Path) -> str:
    return split_suffix(path)[1].lower().replace(".ome.", ".")


def is_supported(path: str | os.PathLike) -> bool:
    """True for NIfTI, NRRD and TIFF files and for folders (read as a DICOM series)."""
    path = Path(path)
    return path.is_dir() or _suffix(path) in _READERS


def read_volume(path: str | os.PathLike) -> Volume:
    """Read a NIfTI, NRRD (``.nrrd``, ``.nhdr``, Slicer's ``.seg.nrrd``) or TIFF file, or a folder
    holding one DICOM series.

    Raises
    ------
    ReadError
        With a message naming the file and what is wrong with it.
    """
    path = Path(path)
    if path.is_dir():
        return read_dicom_series(path)
    reader = _READERS.get(_suffix(path))
    if (
        reader is None and not path.exists()
    ):  # a mistyped folder or file is missing, not of a wrong type
        raise ReadError(f"{path}: no such file or folder")
    if reader is None:
        raise ReadError(
            f"{path.name}: unsupported file type; napari-textseg reads "
            f"{', '.join(SUPPORTED_SUFFIXES)} files and DICOM series folders"
        )
    return reader(path)
