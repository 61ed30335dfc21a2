"""Write a label map onto its source grid: NIfTI, NRRD (Slicer's .seg.nrrd too) or TIFF, plus
the names sidecar."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_textseg.core.errors import WriteError
from napari_textseg.core.io.atomic import atomic_group, check_writable, split_suffix
from napari_textseg.core.io.labels import validate_labels
from napari_textseg.core.io.nifti import write_nifti
from napari_textseg.core.io.nrrd import SEG_SUFFIX, write_nrrd
from napari_textseg.core.io.sidecar import write_sidecar
from napari_textseg.core.io.tiff import write_tiff
from napari_textseg.core.volume import SourceGeometry, affine_from_display

__all__ = ["LABEL_SUFFIXES", "nifti_affine", "write_labels"]

LABEL_SUFFIXES = (".nii.gz", ".nii", SEG_SUFFIX, ".nrrd", ".tif", ".tiff")


def nifti_affine(
    geometry: SourceGeometry | None, scale: tuple[float, ...], translate: tuple[float, ...]
) -> np.ndarray:
    """Affine for a display-ordered array written without reorientation."""
    if geometry is not None and "nifti_affine" in geometry.extra:
        return geometry.extra["nifti_affine"]
    if geometry is not None and geometry.unit == "um":
        return np.diag([*(float(s) for s in scale[::-1]), 1.0])
    return affine_from_display(scale, translate)


def check_label_target(path: str | os.PathLike) -> str:
    """Refuse, before any work, a label file we cannot write: its suffix, a missing folder.
    Returns the suffix."""
    path = Path(path)
    suffix = split_suffix(path)[1].lower()
    if suffix not in LABEL_SUFFIXES:
        raise WriteError(
            f"{path.name}: cannot write labels as {suffix or 'a file without extension'}; "
            f"use one of {', '.join(LABEL_SUFFIXES)}"
        )
    check_writable(path)
    return suffix


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    *,
    geometry: SourceGeometry | None = None,
    scale: tuple[float, ...] = (1.0, 1.0, 1.0),
    translate: tuple[float, ...] = (0.0, 0.0, 0.0),
    label_names: dict[int, str] | None = None,
    label_colors: dict[int, tuple[float, float, float, float]] | None = None,
) -> list[str]:
    """Write a (z, y, x) label map; returns the paths written (file, then sidecar).

    Parameters
    ----------
    path
        ``.nii.gz``/``.nii``, ``.nrrd``, ``.seg.nrrd`` (3D Slicer's segmentation: segment
        names and colours inside, no sidecar) or ``.tif``/``.tiff``.
    labels
        Integer label map in display order. It is stored in the smallest unsigned
        integer type that fits.
    geometry
        The source image's geometry; with it, a NIfTI gets the source affine, header and
        voxel order exactly. Without it, ``scale`` and ``translate`` (napari's, (z, y, x),
        LPS mm) define the grid.
    label_names, label_colors
        Written to ``<name>.labels.json`` beside the file (value -> name, colour).

    Raises
    ------
    WriteError
        For a wrong shape or dtype, an unwritable place or a full disk; any existing
        file at ``path`` is left as it was.
    """
    path = Path(path)
    suffix = check_label_target(path)
    expected = geometry.display_shape() if geometry is not None else None
    data = validate_labels(labels, expected)
    written = [str(path)]
    with atomic_group():  # the label map and its names sidecar appear together, or neither
        if suffix in (".nii", ".nii.gz"):
            write_nifti(path, data, geometry, nifti_affine(geometry, scale, translate))
        elif suffix in (".nrrd", SEG_SUFFIX):
            write_nrrd(
                path,
                data,
                geometry,
                nifti_affine(geometry, scale, translate),
                label_names,
                label_colors,
            )
        else:
            unit = geometry.unit if geometry is not None else "mm"
            write_tiff(path, data, tuple(scale[-3:]), unit)  # type: ignore[arg-type]
        if (label_names or label_colors) and suffix != SEG_SUFFIX:
            names = dict(label_names or {})
            present = {int(v) for v in np.unique(data) if v != 0}
            for value in present - names.keys():
                names[value] = f"label {value}"
            colors = {k: c for k, c in (label_colors or {}).items() if k in names}
            source = geometry.path if geometry is not None else None
            written.append(str(write_sidecar(path, names, colors, source)))
    return written
