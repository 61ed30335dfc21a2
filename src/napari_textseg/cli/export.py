"""The export commands: DICOM-SEG and nnU-Net v2 datasets."""

from __future__ import annotations

import argparse

import numpy as np

from napari_textseg.cli._common import count

__all__ = ["export_nnunet", "export_seg"]


def export_seg(args: argparse.Namespace) -> int:
    from napari_textseg.core.evaluation import check_same_grid, label_map
    from napari_textseg.core.io import read_volume
    from napari_textseg.core.io.dicom_seg import write_dicom_seg

    labels, source = read_volume(args.labels), read_volume(args.source)
    check_same_grid(labels, source)
    path = write_dicom_seg(
        args.output, label_map(labels, "label map"), source.geometry, labels.label_names
    )
    print(f"{count(len([v for v in np.unique(labels.data) if v]), 'segment')} -> {path}")
    return 0


def export_nnunet(args: argparse.Namespace) -> int:
    from napari_textseg.core.io import read_volume
    from napari_textseg.core.io.atomic import safe_stem
    from napari_textseg.core.io.nnunet import NnunetCase, export_nnunet

    cases, seen = [], set()
    for image_path, labels_path in args.case:
        stem = safe_stem(image_path)
        case_id, n = stem, 1
        while case_id in seen:
            n += 1
            case_id = f"{stem}_{n}"
        seen.add(case_id)
        cases.append(NnunetCase(read_volume(image_path), read_volume(labels_path), case_id))
    folder = export_nnunet(cases, args.output, args.id, args.name, overwrite=args.overwrite)
    print(f"{count(len(cases), 'case')} -> {folder}")
    return 0
