"""Metrics against MONAI on the shared CT's 41 organs: largest difference, and time per call.

The prediction is the reference shifted by one voxel in y and x and eroded once, so every
organ has imperfect overlap and surfaces. MONAI (a test dependency) is the baseline
measured in the same run.

Usage::

    python benchmarks/bench_metrics.py [--tolerance 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from monai.metrics import (
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
    compute_surface_dice,
)
from scipy import ndimage

from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import evaluate_labels

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--labels", default=str(REPO.parent / "shared" / "data" / "abdomen_ct_organs.nii.gz")
    )
    parser.add_argument("--tolerance", type=float, default=2.0)
    args = parser.parse_args(argv)
    ref_volume = read_volume(args.labels)
    ref, spacing = ref_volume.data, ref_volume.spacing
    pred = np.roll(ref, (1, -1), axis=(1, 2))
    pred = np.where(ndimage.binary_erosion(pred > 0), pred, 0)

    start = time.perf_counter()
    rows = [
        r
        for r in evaluate_labels(pred, ref, spacing, tolerance=args.tolerance)
        if r.present == "both"
    ]
    ours_s = time.perf_counter() - start

    start = time.perf_counter()
    worst = np.zeros(4)
    for row in rows:
        p = torch.from_numpy((pred == row.value)[None, None])
        r = torch.from_numpy((ref == row.value)[None, None])
        theirs = np.array(
            [
                float(compute_dice(p, r, include_background=True)),
                float(compute_iou(p, r, include_background=True)),
                float(
                    compute_hausdorff_distance(
                        p, r, include_background=True, percentile=95, spacing=spacing
                    )
                ),
                float(
                    compute_surface_dice(
                        p, r, [args.tolerance], include_background=True, spacing=spacing
                    )
                ),
            ]
        )
        ours = np.array([row.dice, row.iou, row.hd95, row.nsd])
        worst = np.maximum(worst, np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs)))
    monai_s = time.perf_counter() - start
    print(f"{len(rows)} organs, spacing {spacing} mm, NSD tolerance {args.tolerance} mm")
    print(
        "largest difference from MONAI (absolute; relative for HD95 > 1 mm): "
        f"Dice {worst[0]:.1e}, IoU {worst[1]:.1e}, HD95 {worst[2]:.1e}, NSD {worst[3]:.1e}"
    )
    print(
        f"time: ours {ours_s:.2f} s (all four metrics), MONAI {monai_s:.2f} s; ratio "
        f"{ours_s / monai_s:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
