"""Commands that describe or make volumes: info, phantom, volumes."""

from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np

__all__ = ["info", "phantom", "volumes"]


def info(args: argparse.Namespace) -> int:
    from napari_textseg.core.intensity import finite_range, no_contrast_reason
    from napari_textseg.core.io import read_volume

    volume = read_volume(args.file)
    unit = "mm" if volume.geometry.unit == "mm" else "µm"
    low, high = finite_range(volume.data)
    z, y, x = volume.spatial_shape
    sz, sy, sx = volume.spacing
    spacing = f"{sz:g} x {sy:g} x {sx:g} {unit}"
    if volume.geometry.format == "tiff" and not volume.geometry.extra.get("voxel_size_stored"):
        spacing = "1 x 1 x 1 (no voxel size stored in the file)"
    rows = [
        ("file", str(args.file)),
        ("format", volume.geometry.format),
        ("shape (z, y, x)", f"{z} x {y} x {x}"),
        ("spacing (z, y, x)", spacing),
        ("origin (z, y, x)", ", ".join(f"{v:.3f}" for v in volume.origin) + f" {unit}"),
        ("source orientation", volume.orientation),
        (
            "display",
            "axial slices, LPS (radiological)"
            if volume.geometry.reoriented
            else "as stored (z, y, x)",
        ),
        ("modality", volume.modality),
        ("dtype", str(volume.data.dtype)),
        ("intensity range", f"{low:g} .. {high:g}"),
    ]
    oblique = volume.geometry.obliquity()
    if oblique is not None:
        rows.append(
            (
                "oblique",
                f"{oblique.degrees:.1f}° from the patient axes; shown axis-aligned, up to "
                f"{oblique.max_offset:.1f} {unit} off; exports keep the rotation",
            )
        )
    if volume.channel_axis is not None:
        rows.append(("channels", str(volume.data.shape[volume.channel_axis])))
    if volume.nan_count:
        rows.append(("NaN voxels", str(volume.nan_count)))
    blank = no_contrast_reason(volume.data)
    if blank and not volume.is_labels:
        rows.append(("warning", f"{blank}: nothing to segment or label"))
    if volume.is_labels:
        values = np.unique(volume.data)
        rows.append(("labels", f"{int((values != 0).sum())} non-zero values"))
        if volume.label_names:
            rows.append(("named labels", str(len(volume.label_names))))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def phantom(args: argparse.Namespace) -> int:
    from napari_textseg.core.phantoms import ct_phantom, nuclei_phantom

    phantom = (ct_phantom if args.kind == "ct" else nuclei_phantom)(seed=args.seed)
    name = f"phantom_{args.kind}_{args.seed}"
    image, labels = phantom.save(args.output, name)
    print(f"image  {image}\nlabels {labels} ({len(phantom.objects)} named objects)")
    first = phantom.objects[0]
    z, y, x = phantom.centre_click(first.value)
    out = shlex.quote(f"{first.name}.nii.gz")
    print(
        f"try: napari-textseg segment {shlex.quote(str(image))} --point {z},{y},{x} --propagate "
        f"--model phantom_sam --name {shlex.quote(first.name)} -o {out}\n"
        f"then: napari-textseg evaluate {out} {shlex.quote(str(labels))} --labels "
        f"{shlex.quote(first.name)}"
    )
    return 0


def volumes(args: argparse.Namespace) -> int:
    from napari_textseg.core.evaluation import label_volumes, write_csv
    from napari_textseg.core.io import read_volume

    rows = label_volumes(read_volume(args.labels))
    unit = next((k for k in (rows[0] if rows else {}) if k.startswith("volume_")), "volume_mL")
    print(f"{'value':>5}  {'name':<24} {'voxels':>10} {unit.removeprefix('volume_'):>12}")
    for row in rows:
        print(f"{row['value']:>5}  {row['name'][:24]:<24} {row['voxels']:>10} {row[unit]:12.3f}")
    if args.csv:
        print(f"-> {write_csv(args.csv, rows)}", file=sys.stderr)
    return 0
