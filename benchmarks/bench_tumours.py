"""Tumours and organs from one box, LiteMedSAM's recipe against its ROI mode (issue 33).

For each object: the box is the object's bounding box on its largest slice, tight (the
recipe's 2-D box) or with 5 pixels of margin (as a user draws it), clipped to the slice;
the box is propagated through the volume (the released recipe) and scored by Dice
against the reference. ROI mode crops every slice to a square of ``context`` x the box's
longer side (at least 64 pixels) around the box before the model sees it.

Objects: the brain MRI's tumour (brain1) and the chest CT's lung tumour (lung1) from
../shared/data, and the shared abdominal CT's organs. Everything runs with the released
LiteMedSAM weights, OpenVINO f32 on a CPU.

Usage::

    python benchmarks/bench_tumours.py [--contexts 2 3 4] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import dice
from napari_textseg.engine.interactive.propagate import PropagationSettings
from napari_textseg.engine.interactive.session_factory import EmbeddingOptions
from napari_textseg.engine.jobs.pipelines import segment_clicks
from napari_textseg.models.loader import load_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
ORGANS = {
    "liver": 5,
    "spleen": 1,
    "kidney_right": 2,
    "kidney_left": 3,
    "stomach": 6,
    "pancreas": 7,
    "gallbladder": 4,
    "aorta": 52,
}


def largest_slice_box(
    mask: np.ndarray, margin: int
) -> tuple[int, tuple[float, float, float, float]]:
    """The slice with the most voxels of ``mask`` and its bounding box (y0, x0, y1, x1) there."""
    z = int(mask.sum((1, 2)).argmax())
    ys, xs = np.nonzero(mask[z])
    h, w = mask.shape[1:]
    box = (
        max(ys.min() - margin, 0),
        max(xs.min() - margin, 0),
        min(ys.max() + margin, h - 1),
        min(xs.max() + margin, w - 1),
    )
    return z, tuple(float(v) for v in box)  # type: ignore[return-value]


def objects() -> list[tuple[str, object, np.ndarray]]:
    """(name, image volume, reference mask) of every object measured."""
    found = []
    for case in ("brain1", "lung1"):
        image = read_volume(SHARED / f"{case}_image.nrrd")
        found.append((f"{case} tumour", image, read_volume(SHARED / f"{case}_label.nrrd").data > 0))
    ct, organs = (
        read_volume(SHARED / "abdomen_ct.nii.gz"),
        read_volume(SHARED / "abdomen_ct_organs.nii.gz"),
    )
    found += [(name, ct, organs.data == value) for name, value in ORGANS.items()]
    return found


def run(model, image, reference: np.ndarray, margin: int, context: float | None) -> float:
    z, box = largest_slice_box(reference, margin)
    mask = segment_clicks(
        image,
        model,
        np.zeros((0, 3)),
        np.zeros(0),
        {z: box},
        propagate=PropagationSettings(),
        roi_context=context,
        embedding=EmbeddingOptions(runtime="openvino"),
    )
    return float(dice(mask, reference))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=float, nargs="+", default=[2.0, 3.0, 4.0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = load_model("litemedsam", device="cpu")
    settings = [None, *args.contexts]
    table: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for name, image, reference in objects():
        for margin in (0, 5):
            row = table.setdefault(f"{name}, box +{margin} px", {})
            for context in settings:
                row["recipe" if context is None else f"ROI x{context:g}"] = round(
                    run(model, image, reference, margin, context), 4
                )
            print(
                f"{name:>14} +{margin} px: " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()),
                flush=True,
            )
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(
            json.dumps({"dice": table, "contexts": args.contexts}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
