"""NIfTI volumes in, NIfTI label maps out, with the source affine restored exactly."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_textseg.core.errors import ReadError
from napari_textseg.core.io.atomic import atomic_target, split_suffix
from napari_textseg.core.io.common import (
    check_file,
    check_fits_in_memory,
    count_nan,
    guess_is_labels,
    guess_medical_modality,
)
from napari_textseg.core.io.sidecar import read_sidecar
from napari_textseg.core.volume import SourceGeometry, Volume, display_affine

__all__ = ["read_nifti", "write_nifti"]


def _spatial_shape(img: nib.Nifti1Image, path: Path) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in img.shape)
    # Trailing singleton axes (x, y, z, 1) are a plain 3-D volume.
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) < 3:
        raise ReadError(
            f"{path.name} is {len(shape)}-D (shape {shape}); napari-textseg needs a 3-D volume"
        )
    if len(shape) > 3:
        raise ReadError(
            f"{path.name} is {len(shape)}-D (shape {shape}), e.g. a time series of "
            f"{shape[3]} volumes; napari-textseg segments one 3-D volume at a time: split it "
            "first (nibabel.funcs.four_to_three, or fslsplit) and open one volume"
        )
    return shape  # type: ignore[return-value]


def read_nifti(path: str | os.PathLike) -> Volume:
    """Read a ``.nii``/``.nii.gz`` file, reoriented for display (see :mod:`..volume`)."""
    path = check_file(path)
    try:
        img = nib.load(path)
    except Exception as err:  # nibabel raises many types for damaged headers
        raise ReadError(f"{path.name}: not a readable NIfTI file ({err})") from err
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise ReadError(f"{path.name}: not a NIfTI image ({type(img).__name__})")
    shape = _spatial_shape(img, path)
    proxy = img.dataobj
    scaled = (getattr(proxy, "slope", 1.0), getattr(proxy, "inter", 0.0)) != (1.0, 0.0)
    check_fits_in_memory(
        path, shape, np.dtype(np.float64) if scaled else proxy.dtype
    )  # scaling makes float64
    try:
        data = np.asanyarray(img.dataobj).reshape(shape)
    except Exception as err:  # EOFError, zlib.error, OSError, ValueError on short files
        raise ReadError(
            f"{path.name}: the file is truncated or corrupt; its voxel data cannot be read ({err})"
        ) from err
    if data.dtype.kind == "c" or data.dtype.names is not None:
        raise ReadError(f"{path.name}: unsupported voxel type {data.dtype} (RGB or complex)")

    header = img.header.copy()
    spatial_unit = header.get_xyzt_units()[0]
    names, colors = read_sidecar(path)
    is_labels = guess_is_labels(path, data, bool(names))
    nan_count = count_nan(data, path.name)

    if spatial_unit == "micron":
        # A microscopy stack saved as NIfTI: no patient frame, keep it as stored.
        display = np.transpose(data, (2, 1, 0))
        geometry = SourceGeometry(
            format="nifti",
            shape=display.shape,
            affine=None,
            header=header,
            unit="um",
            path=str(path),
            extra={"nifti_affine": img.affine.copy()},
        )
        spacing = tuple(float(z) for z in header.get_zooms()[:3][::-1])
        origin = (0.0, 0.0, 0.0)
        modality = "microscopy"
    else:
        geometry = SourceGeometry(
            format="nifti",
            shape=shape,
            affine=img.affine.copy(),
            header=header,
            unit="mm",
            path=str(path),
        )
        display = geometry.to_display(data)
        spacing, origin = display_affine(geometry)
        modality = "unknown" if is_labels else guess_medical_modality(data)
    stem, _ = split_suffix(path)
    return Volume(
        data=display,
        spacing=spacing,  # type: ignore[arg-type]
        origin=origin,  # type: ignore[arg-type]
        modality=modality,
        geometry=geometry,
        name=stem,
        is_labels=is_labels,
        label_names=names or None,
        label_colors=colors or None,
        nan_count=nan_count,
    )


def write_nifti(
    path: str | os.PathLike,
    labels: np.ndarray,
    geometry: SourceGeometry | None,
    affine_ras: np.ndarray,
) -> Path:
    """Write a display-ordered (z, y, x) label map to NIfTI atomically.

    With a NIfTI ``geometry`` the array goes back to the source voxel order and the
    source header, qform and sform (with their codes) are restored exactly. Otherwise
    ``affine_ras`` maps the display array's (x, y, z) indices to RAS mm.
    """
    path = Path(path)
    if geometry is not None and geometry.affine is not None:
        data = geometry.from_display(labels)
        affine = geometry.affine
    else:
        data = np.transpose(labels, (2, 1, 0))
        affine = affine_ras
    data = np.ascontiguousarray(data)

    source_header = geometry.header if geometry is not None else None
    if isinstance(source_header, nib.Nifti1Header):
        header = source_header.copy()
        header.set_data_shape(data.shape)
        img = nib.Nifti1Image(data, affine, header=header)
        img.set_qform(source_header.get_qform(), code=int(source_header["qform_code"]))
        img.set_sform(source_header.get_sform(), code=int(source_header["sform_code"]))
    else:
        img = nib.Nifti1Image(data, affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=1)
        if geometry is not None and geometry.unit == "um":
            img.header.set_xyzt_units(xyz="micron")
        else:
            img.header.set_xyzt_units(xyz="mm")
    img.set_data_dtype(data.dtype)
    # Labels are stored verbatim: no intensity scaling, no calibration range.
    img.header.set_slope_inter(1.0, 0.0)
    img.header["cal_min"] = 0
    img.header["cal_max"] = 0
    img.header["descrip"] = b"napari-textseg labels"
    with atomic_target(path) as tmp:
        nib.save(img, tmp)
    return path
