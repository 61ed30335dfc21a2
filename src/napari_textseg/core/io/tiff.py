"""Microscopy TIFF stacks in (ImageJ or OME voxel size), label stacks out for Fiji."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tifffile

from napari_textseg.core.errors import ReadError
from napari_textseg.core.io.atomic import atomic_target, split_suffix
from napari_textseg.core.io.common import (
    check_file,
    check_fits_in_memory,
    count_nan,
    guess_is_labels,
)
from napari_textseg.core.io.sidecar import read_sidecar
from napari_textseg.core.volume import SourceGeometry, Volume

__all__ = ["read_tiff", "write_tiff"]

# Length units -> micrometres.
_UNIT_UM = {
    "um": 1.0,
    "µm": 1.0,
    "\u03bcm": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "mm": 1e3,
    "millimeter": 1e3,
    "cm": 1e4,
    "m": 1e6,
}
_RESOLUTION_UNIT_UM = {2: 25_400.0, 3: 10_000.0}  # TIFF ResolutionUnit: inch, centimetre


def _unit_factor(unit: str | None) -> float | None:
    if not unit:
        return None
    return _UNIT_UM.get(unit.strip().lower().replace("\\u00b5", "µ"))


def _ome_voxel_size(xml: str) -> tuple[tuple[float, float, float], str] | None:
    """((z, y, x) in µm, the file's x unit) from OME-XML Pixels attributes, or None."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return None
    sizes = []
    for ax in "ZYX":
        value = pixels.get(f"PhysicalSize{ax}")
        factor = _unit_factor(pixels.get(f"PhysicalSize{ax}Unit", "µm"))
        sizes.append(float(value) * factor if value and factor else None)
    if sizes[1] is None and sizes[2] is None:
        return None
    xy = sizes[2] or sizes[1]
    unit = pixels.get("PhysicalSizeXUnit", "µm")
    return (sizes[0] or xy, sizes[1] or xy, sizes[2] or xy), unit  # type: ignore[return-value]


def _imagej_voxel_size(tif: tifffile.TiffFile) -> tuple[tuple[float, float, float], str] | None:
    """((z, y, x) in µm, the file's unit) from ImageJ metadata and X/YResolution tags, or None."""
    meta = tif.imagej_metadata or {}
    page = tif.pages.first
    unit = str(meta.get("unit", "um"))
    factor = _unit_factor(unit)
    if factor is None:
        factor = _RESOLUTION_UNIT_UM.get(int(page.tags.valueof("ResolutionUnit", 1) or 1))
    if factor is None:
        return None

    def size(tag: str) -> float | None:
        value = page.tags.valueof(tag)
        if not value or value[0] == 0:
            return None
        num, den = value
        return den / num * factor

    x, y = size("XResolution"), size("YResolution")
    if x is None and y is None:
        return None
    x = x or y
    y = y or x
    z = float(meta["spacing"]) * factor if "spacing" in meta else x
    if x == 1.0 * factor and y == x and "spacing" not in meta:
        return None  # default 1-pixel-per-unit tags carry no information
    return (z, y, x), unit


def _to_czyx(data: np.ndarray, axes: str, name: str) -> tuple[np.ndarray, bool]:
    """Reorder a TIFF series to (z, y, x) or (c, z, y, x); returns (array, has_channels)."""
    axes = axes.upper()
    if "S" in axes and data.shape[axes.index("S")] in (3, 4):
        raise ReadError(
            f"{name} is an RGB(A) image; napari-textseg expects a greyscale or multi-channel "
            "fluorescence stack: convert it to greyscale or save the colours as channels"
        )
    # Drop singleton axes other than Y and X.
    keep = [i for i, a in enumerate(axes) if data.shape[i] > 1 or a in "YX"]
    data = data.reshape([data.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if "T" in axes:
        raise ReadError(
            f"{name} is a time series ({data.shape[axes.index('T')]} time points, axes {axes}); "
            "open one time point as a 3-D stack"
        )
    # Unknown stacking axes (pages, sequence, ...) count as Z when Z is absent.
    for a in "QIRS":
        if a in axes and "Z" not in axes:
            axes = axes.replace(a, "Z")
        elif a in axes and "C" not in axes:
            axes = axes.replace(a, "C")
    if set(axes) - set("CZYX"):
        raise ReadError(f"{name}: unsupported TIFF axes {axes!r} (shape {data.shape})")
    if "Z" not in axes:
        raise ReadError(
            f"{name} is a 2-D image (axes {axes}, shape {data.shape}); napari-textseg needs a 3-D "
            "stack"
        )
    order = [axes.index(a) for a in "CZYX" if a in axes]
    return np.transpose(data, order), "C" in axes


def read_tiff(path: str | os.PathLike) -> Volume:
    """Read a 3-D (z, y, x) or multi-channel (c, z, y, x) TIFF stack with its voxel size."""
    path = check_file(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = series.axes
            check_fits_in_memory(path, tuple(series.shape), series.dtype)
            data = series.asarray()
            voxel_size = None
            if tif.is_ome and tif.ome_metadata:
                voxel_size = _ome_voxel_size(tif.ome_metadata)
            if voxel_size is None and tif.is_imagej:
                voxel_size = _imagej_voxel_size(tif)
    except ReadError:
        raise
    except Exception as err:  # TiffFileError, struct.error, ValueError on damaged files
        raise ReadError(f"{path.name}: not a readable TIFF image ({err})") from err

    data, has_channels = _to_czyx(data, axes, path.name)
    # Millimetre stacks (e.g. CT labels exported as TIFF) stay in mm so they overlay
    # their source in napari; everything else is in micrometres.
    spacing, unit = (1.0, 1.0, 1.0), "um"
    if voxel_size is not None:
        spacing_um, file_unit = voxel_size
        unit = "mm" if _unit_factor(file_unit) == _UNIT_UM["mm"] else "um"
        scale = 1e-3 if unit == "mm" else 1.0
        spacing = tuple(v * scale for v in spacing_um)
    names, colors = read_sidecar(path)
    stem, _ = split_suffix(path)
    geometry = SourceGeometry(
        format="tiff",
        shape=tuple(data.shape[-3:]),
        unit=unit,
        path=str(path),
        extra={"axes": axes, "voxel_size_stored": voxel_size is not None},
    )
    return Volume(
        data=data,
        spacing=spacing,  # type: ignore[arg-type]
        origin=(0.0, 0.0, 0.0),
        modality="microscopy" if unit == "um" else "unknown",
        geometry=geometry,
        name=stem,
        channel_axis=0 if has_channels else None,
        is_labels=not has_channels and guess_is_labels(path, data, bool(names)),
        label_names=names or None,
        label_colors=colors or None,
        nan_count=count_nan(data, path.name),
    )


def write_tiff(
    path: str | os.PathLike,
    labels: np.ndarray,
    spacing: tuple[float, float, float],
    unit: str,
) -> Path:
    """Write a (z, y, x) label stack, zlib-compressed, atomically.

    Labels that fit in 16 bits are written as an ImageJ hyperstack (Fiji opens it as a
    3-D stack with its voxel size); wider labels as OME-TIFF (Fiji opens it through
    Bio-Formats).
    """
    path = Path(path)
    sz, sy, sx = (float(v) for v in spacing)
    fiji_unit = "micron" if unit == "um" else unit
    with atomic_target(path) as tmp:
        if labels.dtype.itemsize <= 2:
            tifffile.imwrite(
                tmp,
                labels,
                imagej=True,
                resolution=(1.0 / sx, 1.0 / sy),
                metadata={"axes": "ZYX", "spacing": sz, "unit": fiji_unit},
                compression="zlib",
            )
        else:
            ome_unit = "µm" if unit == "um" else unit
            tifffile.imwrite(
                tmp,
                labels,
                ome=True,
                metadata={
                    "axes": "ZYX",
                    "PhysicalSizeX": sx,
                    "PhysicalSizeXUnit": ome_unit,
                    "PhysicalSizeY": sy,
                    "PhysicalSizeYUnit": ome_unit,
                    "PhysicalSizeZ": sz,
                    "PhysicalSizeZUnit": ome_unit,
                },
                compression="zlib",
            )
    return path
