"""DICOM-SEG export for label maps drawn on a DICOM series (highdicom).

A SEG object references its source images frame by frame, so it can only be made for
a volume that was read from a DICOM series: the source headers are re-read from the
series folder and the label map is put back into their slice order.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_textseg import __version__
from napari_textseg.core.errors import InputError, WriteError
from napari_textseg.core.io.atomic import atomic_target
from napari_textseg.core.io.dicom import sop_class_uid, sop_instance_uid
from napari_textseg.core.volume import SourceGeometry

__all__ = ["write_dicom_seg"]


def _property(name: str) -> dict:
    """The segmented property's SNOMED category and type: Organ and the organ's own concept
    when pydicom knows the name (liver, spleen, kidney_left -> Kidney, ...), else Tissue."""
    from pydicom.sr.codedict import codes

    words = name.replace("_", " ").replace("-", " ").split()
    for candidate in ("".join(w.capitalize() for w in words), *(w.capitalize() for w in words)):
        try:
            kind = getattr(codes.SCT, candidate)
        except AttributeError:
            continue
        return {"segmented_property_category": codes.SCT.Organ, "segmented_property_type": kind}
    return {
        "segmented_property_category": codes.SCT.Tissue,
        "segmented_property_type": codes.SCT.Tissue,
    }


def _source_datasets(geometry: SourceGeometry) -> list:
    """The source slices' headers in the volume's slice order, read back by file (a
    volume read before slices were tracked by file falls back to matching SOP UIDs).

    Empty SOP UIDs (anonymised exports) are taken from the file meta; a slice that names
    itself nowhere, or a series without Study and Series UIDs, cannot be referenced and
    is refused by name.
    """
    import pydicom

    folder = Path(geometry.path or "")
    files = geometry.extra.get("SliceFiles") or []
    uids = geometry.extra.get("SOPInstanceUIDs") or []
    if geometry.format != "dicom" or not (files or uids):
        raise InputError(
            "DICOM-SEG needs labels drawn on an image read from a DICOM series; "
            "export NIfTI or TIFF for other images"
        )
    if not folder.is_dir():
        raise InputError(f"DICOM-SEG needs the source series, but {folder} is no longer there")
    if files:
        missing = [name for name in files if not (folder / name).is_file()]
        if missing:
            raise InputError(
                f"{len(missing)} of the {len(files)} source slices are missing from {folder} "
                f"(first: {missing[0]})"
            )
        sources = [
            (name, pydicom.dcmread(folder / name, stop_before_pixels=True)) for name in files
        ]
    else:
        found = {}
        for file in sorted(p for p in folder.iterdir() if p.is_file()):
            try:
                ds = pydicom.dcmread(file, stop_before_pixels=True)
            except Exception:  # not DICOM (DICOMDIR leftovers, notes): the check below decides
                continue
            found[sop_instance_uid(ds)] = (file.name, ds)
        lost = [uid for uid in uids if uid not in found]
        if lost:
            raise InputError(
                f"{len(lost)} of the {len(uids)} source slices are missing from {folder}"
            )
        sources = [found[uid] for uid in uids]
    for name, ds in sources:
        ds.SOPInstanceUID, ds.SOPClassUID = sop_instance_uid(ds), sop_class_uid(ds)
        if not ds.SOPInstanceUID or not ds.SOPClassUID:
            raise InputError(
                f"{name}: the slice has no SOP Instance or SOP Class UID, in its dataset or its "
                "file meta, so a DICOM-SEG cannot reference it; export NIfTI instead"
            )
    if len({ds.SOPInstanceUID for _, ds in sources}) < len(sources):
        raise InputError(
            f"{folder}: several slices carry the same SOP Instance UID, so a DICOM-SEG cannot "
            "tell them apart; export NIfTI instead"
        )
    first_name, first = sources[0]
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        if not str(first.get(keyword, "") or ""):
            raise InputError(
                f"{first_name}: the series has an empty {keyword} (an anonymised export?), so a "
                "DICOM-SEG cannot name the study and series it belongs to; export NIfTI instead"
            )
    return [ds for _, ds in sources]


def write_dicom_seg(
    path: str | os.PathLike,
    labels: np.ndarray,
    geometry: SourceGeometry,
    label_names: dict[int, str] | None = None,
    *,
    algorithm_type: str = "SEMIAUTOMATIC",
) -> Path:
    """Write a display-ordered (z, y, x) label map as a binary DICOM-SEG, one segment per label.

    Segment numbers are 1..N in label-value order; each segment's label is the label
    name and its property type the matching SNOMED concept where pydicom has one.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    path = Path(path)
    if path.suffix.lower() != ".dcm":
        raise WriteError(f"{path.name}: a DICOM-SEG file ends in .dcm")
    sources = _source_datasets(geometry)
    labels = np.asarray(labels)
    if labels.shape != geometry.display_shape():
        raise InputError(
            f"the labels are {labels.shape} voxels, the DICOM series {geometry.display_shape()}"
        )
    values = [int(v) for v in np.unique(labels) if v != 0]
    if not values:
        raise InputError("the label map is empty: there is nothing to write as DICOM-SEG")
    lut = np.zeros(int(labels.max()) + 1, dtype=np.uint16)
    lut[values] = np.arange(1, len(values) + 1)
    # Source order is (x, y, z); a DICOM frame is (rows = y, columns = x).
    frames = np.transpose(geometry.from_display(lut[labels]), (2, 1, 0))
    names = label_names or {}
    algorithm = hd.AlgorithmIdentificationSequence(
        name="napari-textseg", family=codes.cid7162.ArtificialIntelligence, version=__version__
    )
    segments = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=names.get(value, f"label {value}")[:64],
            **_property(names.get(value, "")),
            algorithm_type=algorithm_type,
            algorithm_identification=algorithm,
        )
        for number, value in enumerate(values, start=1)
    ]
    try:
        seg = _segmentation(hd, sources, frames, segments)
    except (AttributeError, ValueError, TypeError) as err:  # highdicom's own checks of the sources
        raise InputError(f"the source series cannot be referenced by a DICOM-SEG: {err}") from err
    with atomic_target(path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    return path


def _segmentation(hd, sources: list, frames: np.ndarray, segments: list):
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames.astype(np.uint16),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        series_instance_uid=hd.UID(),
        series_number=900,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="napari-textseg",
        manufacturer_model_name="napari-textseg",
        software_versions=__version__,
        device_serial_number="none",
        series_description="napari-textseg segmentation",
    )
