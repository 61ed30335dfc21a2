"""Point-click segmentation speed against its baselines, measured in one run.

Same volume (the shared abdominal CT), same random SAM2.1-tiny weights for everything:

1. click latency on a cached slice vs one bare decoder call (target: overhead <= 10 %);
2. a realistic session vs the official sam2 workflow (JPEG folder -> init_state ->
   propagate forward and in reverse, as napari SAM2 plugins run it): one click,
   propagate both ways, one correction click on another slice, re-propagate
   (targets: whole session >= 1.5x faster; first pass no slower);
3. propagation per slice vs the bare model compute of a slice (encoder, memory
   attention, decoder, memory encoder timed alone) (target: <= 1.15x);
4. optional reduced input size (512, as MedSAM2 runs): speed, and how far masks differ.

Usage::

    python benchmarks/bench_point_session.py [--image FILE] [--json OUT] [--quick]

``--quick`` uses a 128 px model input to check the script itself in seconds; the
reported figures come from the default (the official 1024 px input).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_textseg.core.intensity import normalize_for_model
from napari_textseg.core.io import read_volume
from napari_textseg.engine.interactive.prompts import SlicePrompts
from napari_textseg.engine.interactive.propagate import PropagationSettings
from napari_textseg.engine.interactive.sam2_slices import Sam2SliceModel
from napari_textseg.engine.interactive.session import SegmentationSession
from napari_textseg.models.sam2 import load_sam2

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"


def _arch(image_size: int) -> dict:
    feat = image_size // 16
    overrides = (
        []
        if image_size == 1024
        else [
            f"++model.image_size={image_size}",
            f"++model.memory_attention.layer.self_attention.feat_sizes=[{feat},{feat}]",
            f"++model.memory_attention.layer.cross_attention.feat_sizes=[{feat},{feat}]",
        ]
    )
    return {"config": CONFIG, "overrides": tuple(overrides)}


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def bench_click(backend: Sam2SliceModel, frame: np.ndarray, repeat: int) -> dict:
    features = backend.encode(frame)
    prompts = SlicePrompts(np.array([[50.0, 40.0]]), np.array([1]))
    model = backend.model
    h, w = frame.shape
    feats = [f.to(torch.float32) for f in features["feats"]]
    sizes = backend._feat_sizes
    embed = (feats[-1] + model.no_mem_embed).permute(1, 2, 0).view(1, -1, *sizes[-1])
    high_res = [
        f.permute(1, 2, 0).view(1, -1, *s) for f, s in zip(feats[:-1], sizes[:-1], strict=True)
    ]
    coords = torch.tensor([[[40.0 * model.image_size / w, 50.0 * model.image_size / h]]])
    labels = torch.tensor([[1]], dtype=torch.int32)

    def bare():
        with torch.inference_mode():
            sparse, dense = model.sam_prompt_encoder(
                points=(coords, labels), boxes=None, masks=None
            )
            return model.sam_mask_decoder(
                image_embeddings=embed,
                image_pe=model.sam_prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=True,
                repeat_image=False,
                high_res_features=high_res,
            )

    for _ in range(3):  # warm-up
        bare()
        backend.decode(features, prompts)
    t_bare, _ = _timed(bare, repeat)
    t_ours, _ = _timed(lambda: backend.decode(features, prompts), repeat)
    return {"bare_decoder_s": t_bare, "click_s": t_ours, "overhead": t_ours / t_bare - 1}


def _official_session(
    checkpoint: Path, frames: np.ndarray, z0: int, z1: int, click0, click1, image_size: int
):
    from PIL import Image
    from sam2.build_sam import build_sam2_video_predictor

    predictor = build_sam2_video_predictor(
        CONFIG,
        str(checkpoint),
        device="cpu",
        hydra_overrides_extra=list(_arch(image_size)["overrides"]),
    )
    timings = {}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        for z, frame in enumerate(frames):
            rgb = np.repeat(np.clip(np.rint(frame), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
            Image.fromarray(rgb).save(Path(folder) / f"{z:05d}.jpg", quality=95)
        timings["write_jpeg_s"] = time.perf_counter() - start

        def click_and_propagate(state, z, click_yx) -> None:
            predictor.add_new_points_or_box(
                state,
                frame_idx=z,
                obj_id=1,
                points=np.array([click_yx[::-1]], np.float32),
                labels=np.array([1], np.int32),
            )
            for reverse in (False, True):
                for _ in predictor.propagate_in_video(state, reverse=reverse):
                    pass

        with torch.inference_mode():
            state = predictor.init_state(folder)
            click_and_propagate(state, z0, click0)
            timings["first_pass_s"] = time.perf_counter() - start
            click_and_propagate(state, z1, click1)
    timings["session_s"] = time.perf_counter() - start
    return timings


def _our_session(
    backend: Sam2SliceModel, volume, z0: int, z1: int, click0, click1
) -> tuple[dict, np.ndarray]:
    settings = PropagationSettings(empty_stop=0)  # visit every slice, as the official loop does
    session = SegmentationSession(volume.data, volume.spacing, volume.modality, backend)
    timings = {}
    start = time.perf_counter()
    session.set_prompts(np.array([[z0, *click0]]), np.array([1]))
    session.segment_slice(z0)
    first = session.propagate(settings)
    timings["first_pass_s"] = time.perf_counter() - start
    session.set_prompts(np.array([[z0, *click0], [z1, *click1]]), np.array([1, 1]))
    session.segment_slice(z1)
    session.propagate(settings, from_slice=z1)
    timings["session_s"] = time.perf_counter() - start
    timings["slices_encoded"] = session.cache.misses
    session.close()
    return timings, first


def bench_per_slice(backend: Sam2SliceModel, frames: np.ndarray, repeat: int) -> dict:
    """Our propagation's cost per slice against the model's own compute for one slice: the
    encoder and ``SAM2Base.track_step`` with a full memory (6 mask memories, 16 pointers)."""
    model = backend.model
    z = len(frames) - 1
    features = backend.encode(frames[z])
    anchor = backend.decode(features, SlicePrompts(np.array([[50.0, 40.0]]), np.array([1])))
    cond = backend.remember(features, anchor)
    past = {z - k: cond for k in range(1, 16)}
    output_dict = {"cond_frame_outputs": {z - 16: cond}, "non_cond_frame_outputs": past}
    feats = [f.to(torch.float32) for f in features["feats"]]

    def bare_slice():
        with torch.inference_mode():
            model._prepare_backbone_features(model.forward_image(_model_input(backend, frames[z])))
            return model.track_step(
                z,
                False,
                feats,
                backend._pos_embeds,
                backend._feat_sizes,
                None,
                None,
                output_dict,
                len(frames),
                run_mem_encoder=True,
            )

    bare_slice()
    t_bare, _ = _timed(bare_slice, repeat)
    return {"bare_slice_s": t_bare}


def _model_input(backend: Sam2SliceModel, frame: np.ndarray) -> torch.Tensor:
    import torch.nn.functional as F

    image = (
        torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32))[None, None].expand(
            1, 3, *frame.shape
        )
        / 255
    )
    image = F.interpolate(
        image, size=(backend.image_size,) * 2, mode="bilinear", align_corners=False, antialias=True
    )
    return (image - backend._mean) / backend._std


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--image", default=str(REPO.parent / "shared" / "data" / "abdomen_ct.nii.gz")
    )
    parser.add_argument("--json", default="benchmarks/results/point_session.json")
    parser.add_argument(
        "--quick", action="store_true", help="128 px input: checks the script, not the targets"
    )
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--skip-reduced", action="store_true")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    size = 128 if args.quick else 1024
    volume = read_volume(args.image)
    frames = normalize_for_model(volume.data, volume.modality)
    z0, z1 = volume.data.shape[0] // 2, volume.data.shape[0] * 3 // 4
    click0, click1 = (50.0, 40.0), (60.0, 70.0)

    with tempfile.TemporaryDirectory() as tmp:
        from napari_textseg.models.sam2 import build_sam2_model

        checkpoint = Path(tmp) / "sam2.1_hiera_tiny_random.pt"
        torch.save({"model": build_sam2_model(_arch(size)).state_dict()}, checkpoint)
        backend = Sam2SliceModel(load_sam2(_arch(size), checkpoint), torch.device("cpu"))

        results: dict = {
            "image": args.image,
            "shape": list(volume.data.shape),
            "input_size": size,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        }
        results["click"] = bench_click(backend, frames[z0], args.repeat)
        print(
            f"click: bare decoder {results['click']['bare_decoder_s'] * 1000:.1f} ms, ours "
            f"{results['click']['click_s'] * 1000:.1f} ms, overhead "
            f"{results['click']['overhead']:+.1%}",
            flush=True,
        )

        ours, first_mask = _our_session(backend, volume, z0, z1, click0, click1)
        n = volume.data.shape[0]
        ours["first_pass_per_slice_s"] = ours["first_pass_s"] / n
        results["ours"] = ours
        print(f"ours: {ours}", flush=True)
        official = _official_session(checkpoint, frames, z0, z1, click0, click1, size)
        results["official"] = official
        print(f"official: {official}", flush=True)
        results["per_slice"] = bench_per_slice(backend, frames, max(3, args.repeat // 3))
        results["per_slice"]["ours_s"] = ours["first_pass_per_slice_s"]

        if not args.skip_reduced and not args.quick:
            reduced = Sam2SliceModel(load_sam2(_arch(512), checkpoint), torch.device("cpu"))
            small, small_mask = _our_session(reduced, volume, z0, z1, click0, click1)
            inter = np.logical_and(first_mask, small_mask).sum()
            dice = 2 * inter / max(1, first_mask.sum() + small_mask.sum())
            results["reduced_512"] = {
                "first_pass_s": small["first_pass_s"],
                "session_s": small["session_s"],
                "speedup_vs_1024": ours["session_s"] / small["session_s"],
                "dice_vs_1024": float(dice),
            }

    ratio_session = official["session_s"] / ours["session_s"]
    ratio_first = official["first_pass_s"] / ours["first_pass_s"]
    ratio_slice = results["per_slice"]["ours_s"] / results["per_slice"]["bare_slice_s"]
    rows = [
        ("click overhead vs bare decoder", f"{results['click']['overhead']:+.1%}", "<= +10%"),
        ("whole session, official / ours", f"{ratio_session:.2f}x", ">= 1.5x"),
        ("first pass, official / ours", f"{ratio_first:.2f}x", ">= 1.0x"),
        ("per slice, ours / bare model", f"{ratio_slice:.2f}x", "<= 1.15x"),
    ]
    if "reduced_512" in results:
        r = results["reduced_512"]
        rows.append(("512 px input: session speed-up", f"{r['speedup_vs_1024']:.2f}x", "report"))
        rows.append(
            (
                "512 px input: Dice vs 1024 px masks",
                f"{r['dice_vs_1024']:.3f}",
                "report (random weights)",
            )
        )
    results["summary"] = {name: value for name, value, _ in rows}
    print(f"\n{'measure':<40} {'value':>10}  target")
    for name, value, target in rows:
        print(f"{name:<40} {value:>10}  {target}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
