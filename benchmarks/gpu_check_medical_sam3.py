"""GPU check: our Medical-SAM3 3-D backend against the released ``infer_volume``, same model.

Needs a CUDA GPU, the Medical-SAM3 repository installed as its docs say (``pip install
--no-deps -e ./Medical-SAM3``; its ``medical/inference_3d.py`` is the reference) and a
3-D checkpoint (``napari-textseg models download medical_sam3_3d``, or ``--checkpoint``).
Not run on CPU: the SAM3 video model takes minutes per four-slice clip there.

It checks, on the shared abdominal CT (soft-tissue window, as the released docs ask):

1. **equivalence**: our organs, written in order (each where it won by pixel score),
   give the reference's fused label map voxel for voxel;
2. **per-slice SAM3**: Dice of the per-slice image-model path (``sam3_slices``) and of
   the released 3-D policy against the shared reference labels, so the per-slice path
   keeps its place only if it is not worse (``--slice-checkpoint`` for the 2-D model);
3. **speed**: seconds for the organs, against the target of 5 organs on a 300-slice CT
   in under 30 s on an H100-class GPU (``--slices 300`` tiles the CT to that depth).

Usage::

    python benchmarks/gpu_check_medical_sam3.py [--checkpoint FILE] [--slice-checkpoint FILE]
        [--slices N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_textseg.core.intensity import normalize_for_model
from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import dice
from napari_textseg.core.text_prompts import parse_targets
from napari_textseg.engine.text.medical_sam3 import MedicalSam3Backend
from napari_textseg.engine.text.protocol import OrganResult, TextVolume, assign_values
from napari_textseg.models.medical_sam3 import load_medical_sam3_video
from napari_textseg.models.registry import get_card
from napari_textseg.models.store import cached_path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "src/napari_textseg/data/samples"
ORGANS = {
    "liver": 5,
    "spleen": 1,
    "right kidney": 2,
    "left kidney": 3,
    "stomach": 6,
}  # shared label values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument(
        "--slice-checkpoint", default=None, help="a SAM3 image checkpoint for the per-slice path"
    )
    parser.add_argument(
        "--slices", type=int, default=0, help="tile the CT along z to this depth (speed check)"
    )
    parser.add_argument(
        "--json", default=str(REPO / "benchmarks/results/gpu_check_medical_sam3.json")
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU: this check needs one", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    checkpoint = args.checkpoint or cached_path(get_card("medical_sam3_3d"))
    model, released = load_medical_sam3_video(checkpoint, device)
    ct = read_volume(SAMPLES / "abdomen_ct.nii.gz")
    reference_labels = read_volume(SAMPLES / "abdomen_ct_organs.nii.gz").data
    data = ct.data
    if args.slices:
        data = np.concatenate([data] * (args.slices // data.shape[0] + 1))[: args.slices]
    targets = parse_targets(", ".join(ORGANS))
    values = assign_values(targets)
    volume = TextVolume(data, ct.spacing, "CT", ct.geometry)
    report: dict = {"slices": int(data.shape[0])}

    torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        backend = MedicalSam3Backend(model, volume)
        ours = [e for e in backend.run(targets, values) if isinstance(e, OrganResult)]
    torch.cuda.synchronize()
    report["ours_s"] = time.perf_counter() - start

    windowed = normalize_for_model(data.astype(np.float32), "CT", "soft_tissue")
    prompts = {str(v): t.name for t, v in zip(targets, values, strict=True)}
    prompts["instance_label"] = 0
    start = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        fused, _ = released.infer_volume(model, windowed, prompts, released.InferenceConfig())
    torch.cuda.synchronize()
    report["reference_s"] = time.perf_counter() - start
    ours_map = np.zeros(data.shape, np.uint16)
    for r in ours:
        ours_map[r.mask] = r.value
    report["equal_label_map"] = bool(np.array_equal(ours_map, fused))
    if not args.slices:
        report["dice_3d_policy"] = {
            r.target.name: float(dice(r.mask, reference_labels == ORGANS[r.target.name]))
            for r in ours
        }
        if args.slice_checkpoint:
            from napari_textseg.engine.text.sam3_slices import Sam3Labeller
            from napari_textseg.models.loader import load_model

            image_model = load_model("medical_sam3", args.slice_checkpoint, device="cuda")
            per_slice = Sam3Labeller(image_model.model, windowed, device)
            report["dice_per_slice"] = {
                e.target.name: float(dice(e.mask, reference_labels == ORGANS[e.target.name]))
                for e in per_slice.run(targets, values)
                if isinstance(e, OrganResult)
            }
    print(json.dumps(report, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    return 0 if report["equal_label_map"] else 1


if __name__ == "__main__":
    sys.exit(main())
