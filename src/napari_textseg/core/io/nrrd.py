"""NRRD volumes (3D Slicer's format) in, NRRD and Slicer ``.seg.nrrd`` label maps out.

pynrrd parses the header and the voxels (raw, gzip, bzip2, ascii; attached or detached
``.nhdr``); the geometry is turned into the same RAS affine as a NIfTI's, so that display,
prompts and export share one code path (:class:`SourceGeometry`). Spaces are read as ITK
reads them: RAS and LAS are converted, every other space (LPS, scanner-xyz,
3D-right-handed, none) is taken as LPS.

A ``.seg.nrrd`` carries Slicer's segment table in ``Segment<N>_...`` fields (name, colour,
label value, layer); one layer is read and written, several overlapping layers are refused.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import nrrd
import numpy as np
from scipy import ndimage

from napari_textseg.core.errors import ReadError
from napari_textseg.core.io.atomic import atomic_target, split_suffix
from napari_textseg.core.io.common import (
    check_file,
    check_fits_in_memory,
    count_nan,
    guess_is_labels,
    guess_medical_modality,
)
from napari_textseg.core.io.sidecar import Rgba, read_sidecar
from napari_textseg.core.volume import SourceGeometry, Volume, display_affine

__all__ = ["SEG_SUFFIX", "read_nrrd", "write_nrrd"]

SEG_SUFFIX = ".seg.nrrd"
LPS = "left-posterior-superior"

# Sign of each space axis in RAS (x, y, z); a space not listed is LPS, as ITK reads it.
_TO_RAS = {
    "right-anterior-superior": (1.0, 1.0, 1.0),
    "ras": (1.0, 1.0, 1.0),
    "left-anterior-superior": (-1.0, 1.0, 1.0),
    "las": (-1.0, 1.0, 1.0),
    "left-posterior-superior": (-1.0, -1.0, 1.0),
    "lps": (-1.0, -1.0, 1.0),
}
_ENCODINGS = {"raw", "gzip", "gz", "bzip2", "bz2", "ascii", "text", "txt"}
_VECTOR_KINDS = {
    "vector",
    "covariant-vector",
    "normal",
    "rgb-color",
    "hsv-color",
    "xyz-color",
    "rgba-color",
    "3-color",
    "4-color",
    "point",
    "3-vector",
    "quaternion",
    "complex",
    "2d-matrix",
    "3d-matrix",
}


def _flips(space: str) -> np.ndarray:
    return np.array(_TO_RAS.get(space.lower(), _TO_RAS[LPS]))


def _header(path: Path) -> dict[str, Any]:
    try:
        return dict(nrrd.read_header(str(path)))
    except (nrrd.NRRDError, OSError, ValueError, UnicodeDecodeError) as err:
        raise ReadError(f"{path.name}: not a readable NRRD file ({err})") from err


def _check_layout(path: Path, header: dict[str, Any]) -> tuple[int, int, int]:
    """The spatial (x, y, z) shape, after refusing what is not one scalar 3-D volume."""
    sizes = tuple(int(s) for s in header.get("sizes", ()))
    kinds = [str(k).lower() for k in header.get("kinds", ["domain"] * len(sizes))]
    encoding = str(header.get("encoding", "raw")).lower()
    if encoding not in _ENCODINGS:
        raise ReadError(
            f"{path.name}: unsupported NRRD encoding '{encoding}' (napari-textseg reads raw, gzip, "
            "bzip2 and ascii)"
        )
    if len(sizes) == 4 and path.name.lower().endswith(SEG_SUFFIX):
        raise ReadError(
            f"{path.name} holds {sizes[0]} segmentation layers whose segments overlap (Slicer's "
            "multi-layer segmentation); napari-textseg reads one layer: in Slicer, remove the "
            "overlaps "
            "(Segment Editor > Logical operators) or export each segment on its own"
        )
    vector = [k for k in kinds if k in _VECTOR_KINDS]
    if vector:
        raise ReadError(
            f"{path.name} is a {vector[0]} image (sizes {' x '.join(map(str, sizes))}); "
            "napari-textseg "
            "needs one scalar 3-D volume: extract one component first"
        )
    if len(sizes) != 3:
        raise ReadError(
            f"{path.name} is {len(sizes)}-D (sizes {' x '.join(map(str, sizes))}); napari-textseg "
            "needs a 3-D volume"
        )
    return sizes  # type: ignore[return-value]


def _check_data_file(path: Path, header: dict[str, Any]) -> None:
    data_file = header.get("data file") or header.get("datafile")
    if isinstance(data_file, str) and not data_file.upper().startswith("LIST"):
        target = Path(data_file) if Path(data_file).is_absolute() else path.parent / data_file
        if "%" not in data_file and not target.is_file():
            raise ReadError(
                f"{path.name}: its data file {data_file} is missing (a detached NRRD header needs "
                "the data file named in it beside it)"
            )


def ras_affine(header: dict[str, Any]) -> np.ndarray:
    """Voxel index (NRRD axis order) -> RAS millimetres, from a NRRD header."""
    directions = header.get("space directions")
    if directions is not None:
        matrix = np.asarray(directions, dtype=float).T  # pynrrd gives one row per axis
    else:
        spacings = np.asarray(header.get("spacings", [1.0, 1.0, 1.0]), dtype=float)
        matrix = np.diag(np.where(np.isfinite(spacings), spacings, 1.0))
    origin = np.asarray(header.get("space origin", [0.0, 0.0, 0.0]), dtype=float)
    flips = _flips(str(header.get("space", LPS)))
    affine = np.eye(4)
    affine[:3, :3] = flips[:, None] * matrix
    affine[:3, 3] = flips * origin
    return affine


def _segments(header: dict[str, Any]) -> tuple[dict[int, str], dict[int, Rgba]]:
    """Slicer's segment table: label value -> name and colour (layer 0 only is ever read)."""
    names: dict[int, str] = {}
    colors: dict[int, Rgba] = {}
    i = 0
    while f"Segment{i}_ID" in header or f"Segment{i}_Name" in header:
        field = f"Segment{i}_"
        value = int(header.get(field + "LabelValue", i + 1))
        names[value] = str(header.get(field + "Name", header.get(field + "ID", f"segment {value}")))
        color = str(header.get(field + "Color", "")).split()
        if len(color) == 3:
            r, g, b = (float(c) for c in color)
            colors[value] = (r, g, b, 1.0)
        i += 1
    return names, colors


def read_nrrd(path: str | os.PathLike) -> Volume:
    """Read a ``.nrrd``/``.nhdr`` volume (or a Slicer ``.seg.nrrd``), reoriented for display."""
    path = check_file(path)
    header = _header(path)
    shape = _check_layout(path, header)
    _check_data_file(path, header)
    wide = any(
        w in str(header.get("type", "")).lower() for w in ("double", "64", "long long", "float")
    )
    check_fits_in_memory(
        path, shape, np.dtype(np.float64 if wide else np.int32)
    )  # an upper bound of its type
    try:
        data, header = nrrd.read(str(path), index_order="F")
    except (nrrd.NRRDError, OSError, EOFError, ValueError, zlib.error) as err:
        raise ReadError(
            f"{path.name}: the file is truncated or corrupt; its voxel data cannot be read ({err})"
        ) from err
    data = np.asarray(data).reshape(shape, order="F")
    if not data.dtype.isnative:  # a big-endian file: the models and napari want native byte order
        data = data.astype(data.dtype.newbyteorder("="))
    affine = ras_affine(header)
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ReadError(
            f"{path.name}: its space directions are degenerate (a zero or repeated axis)"
        )

    is_seg = path.name.lower().endswith(SEG_SUFFIX)
    names, colors = _segments(header) if is_seg else read_sidecar(path)
    geometry = SourceGeometry(
        format="nrrd",
        shape=shape,
        affine=affine,
        header=header,
        unit="mm",
        path=str(path),
        extra={"nrrd_space": str(header.get("space", LPS))},
    )
    display = geometry.to_display(data)
    spacing, origin = display_affine(geometry)
    is_labels = is_seg or guess_is_labels(path, data, bool(names))
    stem, _ = split_suffix(path)
    return Volume(
        data=display,
        spacing=spacing,  # type: ignore[arg-type]
        origin=origin,  # type: ignore[arg-type]
        modality="unknown" if is_labels else guess_medical_modality(data),
        geometry=geometry,
        name=stem,
        is_labels=is_labels,
        label_names=names or None,
        label_colors=colors or None,
        nan_count=count_nan(data, path.name),
    )


def _segment_fields(
    data: np.ndarray, names: dict[int, str], colors: dict[int, Rgba]
) -> dict[str, str]:
    """Slicer's ``Segment<N>_...`` fields for every label value present (one layer, full grid)."""
    values = [int(v) for v in np.unique(data) if v != 0]
    boxes = ndimage.find_objects(data) if values and max(values) <= 1_000_000 else []
    fields = {
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
    }
    for i, value in enumerate(values):
        box = (
            boxes[value - 1]
            if value - 1 < len(boxes) and boxes[value - 1] is not None
            else tuple(slice(0, n) for n in data.shape)
        )
        rgb = colors.get(value, (0.5, 0.5, 0.5, 1.0))[:3]
        fields |= {
            f"Segment{i}_ID": f"Segment_{value}",
            f"Segment{i}_Name": names.get(value, f"label {value}"),
            f"Segment{i}_NameAutoGenerated": "0" if value in names else "1",
            f"Segment{i}_Color": " ".join(f"{float(c):.6g}" for c in rgb),
            f"Segment{i}_ColorAutoGenerated": "0" if value in colors else "1",
            f"Segment{i}_LabelValue": str(value),
            f"Segment{i}_Layer": "0",
            f"Segment{i}_Extent": " ".join(f"{s.start} {s.stop - 1}" for s in box),
        }
    return fields


def write_nrrd(
    path: str | os.PathLike,
    labels: np.ndarray,
    geometry: SourceGeometry | None,
    affine_ras: np.ndarray,
    names: dict[int, str] | None = None,
    colors: dict[int, Rgba] | None = None,
) -> Path:
    """Write a display-ordered (z, y, x) label map as gzip NRRD, atomically.

    On a reoriented source grid the voxels go back to the source's axis order and space
    (an NRRD keeps its own space, e.g. LPS); otherwise ``affine_ras`` maps the display
    array's (x, y, z) indices to RAS mm and the file is written in LPS, as Slicer writes.
    A ``.seg.nrrd`` gets Slicer's segment table (names, colours, label values) on the
    full grid.
    """
    path = Path(path)
    if geometry is not None and geometry.affine is not None:
        data, affine = geometry.from_display(labels), geometry.affine
    else:
        data, affine = np.transpose(labels, (2, 1, 0)), affine_ras
        if (
            geometry is not None and geometry.unit == "um"
        ):  # a stack has no patient frame: its axes as stored
            affine = (
                np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
            )  # (LPS-positive, so it reads back unflipped)
    data = np.asfortranarray(data)
    space = geometry.extra.get("nrrd_space", LPS) if geometry is not None else LPS
    if space.lower() not in _TO_RAS:
        space = LPS
    flips = _flips(space)
    header: dict[str, Any] = {
        "space": space,
        "kinds": ["domain"] * 3,
        "encoding": "gzip",
        "space directions": (flips[:, None] * affine[:3, :3]).T,
        "space origin": flips * affine[:3, 3],
    }
    if path.name.lower().endswith(SEG_SUFFIX):
        header |= _segment_fields(data, names or {}, colors or {})
    with atomic_target(path) as tmp:
        nrrd.write(str(tmp), data, header, index_order="F", compression_level=6)
    return path
