"""Export annotated volumes as an nnU-Net v2 raw dataset.

Layout (nnU-Net v2 ``dataset_format.md``)::

    Dataset<ID>_<Name>/
        dataset.json        channel_names, labels (name -> consecutive int, background 0),
                            numTraining, file_ending
        imagesTr/<case>_0000.nii.gz
        labelsTr/<case>.nii.gz

Label values differ between files (a text run gives the liver 5, a click 1), and
nnU-Net needs one consecutive table for the whole dataset, so labels are matched by
name across cases and renumbered 1..N in order of first appearance.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_textseg.core.errors import InputError, WriteError
from napari_textseg.core.io.atomic import atomic_group, atomic_target
from napari_textseg.core.io.export import nifti_affine
from napari_textseg.core.io.nifti import write_nifti
from napari_textseg.core.volume import Volume

__all__ = ["NnunetCase", "dataset_folder", "export_nnunet"]

_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass
class NnunetCase:
    """One training case: an image and its label map on the same grid."""

    image: Volume
    labels: Volume
    case_id: str


def dataset_folder(root: str | os.PathLike, dataset_id: int, name: str) -> Path:
    """``root/Dataset<ID>_<Name>``, checking nnU-Net's rules for both parts."""
    if not 1 <= dataset_id <= 999:
        raise InputError(f"the nnU-Net dataset id must be 1..999, got {dataset_id}")
    if not _NAME.match(name):
        raise InputError(f"the dataset name {name!r} may hold only letters, digits, '_' and '-'")
    return Path(root) / f"Dataset{dataset_id:03d}_{name}"


def _label_name(case: NnunetCase, value: int) -> str:
    return (case.labels.label_names or {}).get(value, f"label_{value}")


def _label_table(cases: list[NnunetCase], present: list[list[int]]) -> dict[str, int]:
    table: dict[str, int] = {"background": 0}
    for case, values in zip(cases, present, strict=True):
        for value in values:
            table.setdefault(_label_name(case, value), len(table))
    return table


def _check_case(case: NnunetCase) -> None:
    if case.image.channel_axis is not None:
        raise InputError(
            f"{case.case_id}: multi-channel images are not supported yet; export one channel"
        )
    if case.image.spatial_shape != case.labels.data.shape:
        raise InputError(
            f"{case.case_id}: the image is {case.image.spatial_shape} voxels and the labels "
            f"{case.labels.data.shape}; they must share one grid"
        )
    if not np.allclose(case.image.spacing, case.labels.spacing, rtol=1e-4):
        raise InputError(
            f"{case.case_id}: image spacing {case.image.spacing} differs from the labels' "
            f"{case.labels.spacing}"
        )
    if not np.issubdtype(case.labels.data.dtype, np.integer) or case.labels.data.min() < 0:
        raise InputError(
            f"{case.case_id}: the labels must be whole numbers >= 0, got {case.labels.data.dtype}"
        )
    if not _NAME.match(case.case_id):
        raise InputError(f"case id {case.case_id!r} may hold only letters, digits, '_' and '-'")


def _write_cases(
    folder: Path, cases: list[NnunetCase], present: list[list[int]], table: dict[str, int]
) -> None:
    for case, values in zip(cases, present, strict=True):
        lut = np.zeros(
            max(values, default=0) + 1, dtype=np.uint8 if len(table) < 256 else np.uint16
        )
        for value in values:
            lut[value] = table[_label_name(case, value)]
        geometry = case.image.geometry
        affine = nifti_affine(geometry, case.image.spacing, case.image.origin)
        write_nifti(
            folder / "imagesTr" / f"{case.case_id}_0000.nii.gz", case.image.data, geometry, affine
        )
        write_nifti(
            folder / "labelsTr" / f"{case.case_id}.nii.gz", lut[case.labels.data], geometry, affine
        )


def _dataset_json(modality: str, table: dict[str, int], name: str, count: int) -> dict:
    return {
        "channel_names": {
            "0": "CT" if modality == "CT" else modality if modality != "unknown" else "image"
        },
        "labels": table,
        "numTraining": count,
        "file_ending": ".nii.gz",
        "name": name,
        "description": "exported by napari-textseg",
    }


def export_nnunet(
    cases: list[NnunetCase],
    root: str | os.PathLike,
    dataset_id: int,
    name: str,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``cases`` as an nnU-Net v2 raw dataset under ``root``; returns its folder.

    Images and labels are written with the image's own geometry (affine, header), so
    nnU-Net's geometry check between them passes. An existing dataset folder is kept
    unless ``overwrite``. All files are written, or none: on a failure no new file is
    left and an older dataset's files are unchanged.
    """
    if not cases:
        raise InputError("an nnU-Net dataset needs at least one annotated volume")
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        raise InputError(f"case ids must be unique, got {ids}")
    for case in cases:
        _check_case(case)
    folder = dataset_folder(root, dataset_id, name)
    if folder.exists() and not overwrite:
        raise WriteError(f"{folder} exists; choose another id or name, or overwrite it")
    present = [[int(v) for v in np.unique(case.labels.data) if v != 0] for case in cases]
    table = _label_table(cases, present)
    modalities = {c.image.modality for c in cases}
    if len(modalities) > 1:
        raise InputError(
            f"cases mix modalities {sorted(modalities)}; one dataset holds one kind of image"
        )
    created = [d for d in (folder, folder / "imagesTr", folder / "labelsTr") if not d.exists()]
    for d in created:
        d.mkdir(parents=True)
    try:
        with (
            atomic_group()
        ):  # every file of the dataset, or none (an older dataset stays as it was)
            _write_cases(folder, cases, present, table)
            with atomic_target(folder / "dataset.json") as tmp:
                tmp.write_text(
                    json.dumps(_dataset_json(modalities.pop(), table, name, len(cases)), indent=2)
                )
    except BaseException:
        for d in reversed(created):  # empty again: the group removed what it staged
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    return folder
