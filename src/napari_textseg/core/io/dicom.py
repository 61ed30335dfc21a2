"""A folder holding one DICOM series in, as a volume with its patient geometry."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from napari_textseg.core.errors import ReadError
from napari_textseg.core.io.common import count_nan
from napari_textseg.core.volume import SourceGeometry, Volume, display_affine

__all__ = ["read_dicom_series", "sop_class_uid", "sop_instance_uid"]

# Slice gaps may vary by this fraction of the median gap before the series is refused.
_GAP_TOLERANCE = 0.01
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def sop_instance_uid(ds) -> str:
    """The slice's SOPInstanceUID, from its file meta where the dataset's own is empty."""
    return str(
        ds.get("SOPInstanceUID", "")
        or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPInstanceUID", "")
        or ""
    )


def sop_class_uid(ds) -> str:
    """The slice's SOPClassUID, from its file meta where the dataset's own is empty."""
    return str(
        ds.get("SOPClassUID", "")
        or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "")
        or ""
    )


def _headers(folder: Path) -> list:
    import pydicom
    from pydicom.errors import InvalidDicomError

    found = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError, ValueError):
            continue
        if "ImagePositionPatient" in ds and "SeriesInstanceUID" in ds:
            found.append((file, ds))
    return found


def _one_series(folder: Path, found: list) -> list:
    series = defaultdict(list)
    for file, ds in found:
        series[str(ds.SeriesInstanceUID)].append((file, ds))
    if not series:
        raise ReadError(f"{folder}: no DICOM image slices found in this folder")
    if len(series) > 1:
        listing = "; ".join(
            f"{items[0][1].get('SeriesDescription', '?')!s} ({len(items)} files, UID {uid})"
            for uid, items in series.items()
        )
        raise ReadError(
            f"{folder} holds {len(series)} DICOM series ({listing}); "
            "put each series in its own folder and open one"
        )
    return next(iter(series.values()))


def read_dicom_series(folder: str | os.PathLike) -> Volume:
    """Read every slice of the single series in ``folder``; slices are sorted by position."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReadError(f"{folder}: not a folder")
    items = _one_series(folder, _headers(folder))
    first = items[0][1]
    iop = np.array(first.ImageOrientationPatient, dtype=float)
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    for file, ds in items:
        if not np.allclose(np.array(ds.ImageOrientationPatient, dtype=float), iop, atol=1e-4):
            raise ReadError(f"{file.name}: slice orientation differs from the rest of the series")
        if (ds.Rows, ds.Columns) != (first.Rows, first.Columns):
            raise ReadError(f"{file.name}: slice size differs from the rest of the series")
    items.sort(
        key=lambda item: float(np.dot(np.array(item[1].ImagePositionPatient, float), normal))
    )
    positions = np.array([item[1].ImagePositionPatient for item in items], dtype=float)
    if len(items) > 1:
        gaps = np.diff(positions @ normal)
        median = float(np.median(gaps))
        if median <= 0 or np.any(np.abs(gaps - median) > _GAP_TOLERANCE * median + 1e-4):
            raise ReadError(
                f"{folder}: slice spacing is irregular (gaps {gaps.min():.3g}..{gaps.max():.3g} "
                "mm); "
                "slices may be missing or duplicated"
            )
        slice_step = (positions[-1] - positions[0]) / (len(items) - 1)
    else:
        slice_step = normal * float(first.get("SliceThickness", 1.0) or 1.0)

    slices = []
    import pydicom

    for file, _ in items:
        try:
            ds = pydicom.dcmread(file)
            pixels = ds.pixel_array
        except Exception as err:  # missing decoders for compressed transfer syntaxes, damage
            raise ReadError(
                f"{file.name}: cannot decode the pixel data ({err}); compressed DICOM needs "
                "pylibjpeg or gdcm installed"
            ) from err
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        if slope != 1 or intercept != 0:
            pixels = pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)
            if float(slope).is_integer() and float(intercept).is_integer():
                pixels = pixels.astype(np.int32)
        slices.append(pixels)
    try:
        stack = np.stack(slices, axis=-1)  # (rows=y, cols=x, z)
    except ValueError as err:
        raise ReadError(f"{folder}: slices have different pixel formats ({err})") from err
    if stack.ndim != 3:
        raise ReadError(f"{folder}: colour (RGB) DICOM is not supported, shape {stack.shape}")
    source = np.transpose(stack, (1, 0, 2))  # (x, y, z)
    if source.dtype == np.int32 and source.min() >= -32768 and source.max() <= 32767:
        source = source.astype(np.int16)

    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_dir * col_spacing  # x index runs along a row
    affine_lps[:3, 1] = col_dir * row_spacing  # y index runs down a column
    affine_lps[:3, 2] = slice_step
    affine_lps[:3, 3] = positions[0]
    geometry = SourceGeometry(
        format="dicom",
        shape=tuple(source.shape),
        affine=_LPS_TO_RAS @ affine_lps,
        unit="mm",
        path=str(folder),
        extra={
            "SeriesInstanceUID": str(first.SeriesInstanceUID),
            "StudyInstanceUID": str(first.get("StudyInstanceUID", "")),
            "FrameOfReferenceUID": str(first.get("FrameOfReferenceUID", "")),
            "SOPInstanceUIDs": [sop_instance_uid(ds) for _, ds in items],
            # Slices are tracked by file: anonymised exports may leave every UID empty.
            "SliceFiles": [str(file.relative_to(folder)) for file, _ in items],
        },
    )
    modality = str(first.get("Modality", "")).upper()
    spacing, origin = display_affine(geometry)
    return Volume(
        data=geometry.to_display(source),
        spacing=spacing,  # type: ignore[arg-type]
        origin=origin,  # type: ignore[arg-type]
        modality=modality if modality in ("CT", "MR") else "unknown",
        geometry=geometry,
        name=str(first.get("SeriesDescription", "") or folder.name),
        nan_count=count_nan(source, folder.name),
    )
