"""npe2 writers for Labels layers: NIfTI and NRRD on the source grid, Slicer's .seg.nrrd, TIFF
with voxel size, DICOM-SEG."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from napari_textseg._napari.layers import label_table, layer_geometry
from napari_textseg.core.errors import NapariTextsegError, WriteError
from napari_textseg.core.io import write_labels

__all__ = [
    "write_labels_dicom_seg",
    "write_labels_nifti",
    "write_labels_nrrd",
    "write_labels_seg_nrrd",
    "write_labels_tiff",
]


def _reason_shown(writer: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """napari takes a ValueError from a writer for "no writer found" and shows only that; our
    refusals (InputError is a ValueError) go out as WriteError, so the user reads why."""

    @functools.wraps(writer)
    def write(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
        try:
            return writer(path, data, attributes)
        except NapariTextsegError as err:
            if isinstance(err, WriteError):
                raise
            raise WriteError(
                f"cannot save {attributes.get('name', 'the labels')} as {path}: {err}"
            ) from err

    return write


def _write(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    data = np.asarray(data)
    names, colors = label_table(data, attributes)
    return write_labels(
        path,
        data,
        geometry=layer_geometry(attributes),
        scale=tuple(attributes.get("scale", (1.0, 1.0, 1.0))),
        translate=tuple(attributes.get("translate", (0.0, 0.0, 0.0))),
        label_names=names or None,
        label_colors=colors or None,
    )


@_reason_shown
def write_labels_nifti(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write a Labels layer as ``.nii.gz``/``.nii`` plus its ``.labels.json`` sidecar."""
    return _write(path, data, attributes)


@_reason_shown
def write_labels_nrrd(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write a Labels layer as gzip ``.nrrd`` on the source grid plus its sidecar."""
    return _write(path, data, attributes)


@_reason_shown
def write_labels_seg_nrrd(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write a Labels layer as 3D Slicer's ``.seg.nrrd``: one named, coloured segment per label."""
    return _write(path, data, attributes)


@_reason_shown
def write_labels_tiff(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write a Labels layer as a compressed ImageJ/OME TIFF plus its sidecar."""
    return _write(path, data, attributes)


@_reason_shown
def write_labels_dicom_seg(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write a Labels layer drawn on a DICOM series as a DICOM-SEG (one segment per label)."""
    from napari_textseg.core.errors import InputError
    from napari_textseg.core.io.dicom_seg import write_dicom_seg

    geometry = layer_geometry(attributes)
    if geometry is None:
        raise InputError(
            "DICOM-SEG needs labels made on an image opened from a DICOM series folder"
        )
    data = np.asarray(data)
    names, _ = label_table(data, attributes)
    return [str(write_dicom_seg(path, data, geometry, names))]
