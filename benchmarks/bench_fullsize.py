"""LiteMedSAM on a full-size CT: encoder runtimes, the embedding cache, the first mask after Load.

The shared abdominal CT is resampled to 0.75 x 0.75 x 1 mm (scipy.ndimage.zoom, order 1
for the image, 0 for the labels: 90 x 404 x 488 voxels here), as issue 31 measured it.
Everything is measured in one run, on this machine, with the released weights:

1. The image encoder per slice: eager PyTorch f32, OpenVINO f32, OpenVINO bf16 (median
   of interleaved calls on the same slice) and the largest difference from eager.
2. A box to the 3-D liver (one 2-D box on the liver's middle slice, propagated):
   eager PyTorch with no cache (what the plugin did before), OpenVINO f32 with a cold
   disk cache, then a fresh session on the warm cache. Target: warm <= 0.15x eager cold.
3. The first mask after Load while the background precompute runs: the time from the
   prompt to the mask, against one encoder call. Target: at most one encoder call.
4. Peak resident memory of a subprocess that precomputes and propagates a 512 x 512 x 300
   CT (the shared CT resampled) with the cache on (``--big``). Target: volume + 2 GiB.

Usage::

    python benchmarks/bench_fullsize.py [--json OUT] [--repeat N] [--big]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from napari_textseg.core.io import read_volume
from napari_textseg.core.metrics import dice
from napari_textseg.engine.interactive.embedding_store import EmbeddingStore
from napari_textseg.engine.interactive.propagate import PropagationSettings
from napari_textseg.engine.interactive.session_factory import (
    EmbeddingOptions,
    open_session,
    open_slice_model,
)
from napari_textseg.models.loader import load_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
LIVER = 5


def full_size(spacing_zyx=(1.0, 0.75, 0.75), shape: tuple[int, int, int] | None = None):
    """The shared CT and its organ map resampled to ``spacing_zyx`` (or to ``shape``)."""
    image, organs = (
        read_volume(SHARED / "abdomen_ct.nii.gz"),
        read_volume(SHARED / "abdomen_ct_organs.nii.gz"),
    )
    if shape is None:
        factors = [s / t for s, t in zip(image.spacing, spacing_zyx, strict=True)]
    else:
        factors = [t / s for s, t in zip(image.data.shape, shape, strict=True)]
    data = ndimage.zoom(image.data.astype(np.float32), factors, order=1)
    labels = ndimage.zoom(organs.data, factors, order=0)
    spacing = tuple(s / f for s, f in zip(image.spacing, factors, strict=True))
    return data, labels, spacing, image.modality


def middle_box(organ: np.ndarray) -> tuple[int, tuple[float, float, float, float]]:
    zs = np.nonzero(organ.any(axis=(1, 2)))[0]
    z = int((zs.min() + zs.max()) // 2)
    ys, xs = np.nonzero(organ[z])
    return z, (float(ys.min()), float(xs.min()), float(ys.max() + 1), float(xs.max() + 1))


def encoder_times(lite, frame: np.ndarray, repeat: int) -> dict:
    models = {
        name: open_slice_model(lite, EmbeddingOptions(*name.split("-")))
        for name in ("torch-f32", "openvino-f32", "openvino-bf16")
    }
    image, _ = models["torch-f32"].model_input(frame)
    reference = models["torch-f32"].encoder(image)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeat):
        for name, model in models.items():
            start = time.perf_counter()
            model.encoder(image)
            times[name].append(time.perf_counter() - start)
    out = {}
    for name, model in models.items():
        out[name] = {
            "runs_on": model.encoder.tag,
            "note": model.runtime_note,
            "median_s": statistics.median(times[name]),
            "max_abs_diff": float((model.encoder(image) - reference).abs().max()),
        }
    eager = out["torch-f32"]["median_s"]
    for row in out.values():
        row["speedup"] = eager / row["median_s"]
    return out


def liver_run(lite, data, spacing, modality, liver, options: EmbeddingOptions) -> dict:
    z, box = middle_box(liver)
    start = time.perf_counter()
    session = open_session(
        data, spacing, modality, open_slice_model(lite, options), options, "fullsize-ct"
    )
    session.set_prompts(np.zeros((0, 3)), np.zeros(0, dtype=int), {z: box})
    mask = session.propagate(PropagationSettings())
    seconds = time.perf_counter() - start
    session.close()
    return {
        "seconds": seconds,
        "dice": dice(mask, liver),
        "slices": len(session.visited_slices()),
        "store_hits": options.store.hits if options.store else 0,
    }


def first_mask_after_load(lite, data, spacing, modality, liver) -> dict:
    """Precompute from the middle slice; 2 s later a box on a slice far from it."""
    options = EmbeddingOptions("auto", "f32", None)
    session = open_session(data, spacing, modality, open_slice_model(lite, options), options)
    one_call = statistics.median(
        _timed(lambda: session.slice_model.encode(session.frames[0])) for _ in range(3)
    )
    steps = session.precompute_steps(session.n_slices // 2)
    stop = threading.Event()

    def background():
        for _ in steps:
            if stop.is_set():
                break

    thread = threading.Thread(target=background, daemon=True)
    thread.start()
    time.sleep(2.0)
    zs = np.nonzero(liver.any(axis=(1, 2)))[0]
    z = int(zs.min()) + 2  # far from the middle: not encoded yet
    ys, xs = np.nonzero(liver[z])
    box = (float(ys.min()), float(xs.min()), float(ys.max() + 1), float(xs.max() + 1))
    was_cached = (None, None, z) in session.cache
    calls, encode = [], session.slice_model.encode
    me = threading.get_ident()

    def counted(frame):  # encoder calls made for the prompt (on this thread)
        if threading.get_ident() == me:
            calls.append(1)
        return encode(frame)

    session.slice_model.encode = counted
    start = time.perf_counter()
    checked = session.check_prompts(np.zeros((0, 3)), np.zeros(0, dtype=int), {z: box})
    session.segment_slice(z, checked)
    seconds = time.perf_counter() - start
    stop.set()
    thread.join()
    session.close()
    return {
        "first_mask_s": seconds,
        "one_encoder_call_s": one_call,
        "ratio": seconds / one_call,
        "slice_was_cached": was_cached,
        "encoder_calls_for_the_prompt": len(calls),
    }


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def big_volume_child(cache: str) -> None:
    """In a subprocess: precompute and propagate a 512 x 512 x 300 CT with the cache on.
    The reference labels wait on disk meanwhile: the peak is the plugin's, not the benchmark's."""
    data, labels, spacing, modality = full_size(shape=(300, 512, 512))
    liver = labels == LIVER
    z, box = middle_box(liver)
    reference = Path(cache) / "liver.npy"
    Path(cache).mkdir(parents=True, exist_ok=True)
    np.save(reference, liver)
    del labels, liver
    lite = load_model("litemedsam", device="cpu")
    options = EmbeddingOptions("auto", "f32", EmbeddingStore(Path(cache) / "embeddings"))
    session = open_session(data, spacing, modality, open_slice_model(lite, options), options, "big")
    for _ in session.precompute_steps(150):
        pass
    session.set_prompts(np.zeros((0, 3)), np.zeros(0, dtype=int), {z: box})
    mask = session.propagate(PropagationSettings())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "volume_bytes": int(data.nbytes),
                "peak_rss_bytes": int(peak),
                "dice": dice(mask, np.load(reference)),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "fullsize.json"))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--big", action="store_true", help="also the 512 x 512 x 300 peak-memory run"
    )
    parser.add_argument("--big-child", metavar="CACHE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.big_child:
        big_volume_child(args.big_child)
        return
    torch.manual_seed(0)
    data, labels, spacing, modality = full_size()
    liver = labels == LIVER
    print(
        f"full-size CT: {data.shape} voxels, spacing {tuple(round(s, 3) for s in spacing)} mm; "
        f"torch threads {torch.get_num_threads()}"
    )
    lite = load_model("litemedsam", device="cpu")
    results: dict = {"shape": list(data.shape), "threads": torch.get_num_threads()}

    z, _ = middle_box(liver)
    from napari_textseg.core.intensity import challenge_uint8

    frame = challenge_uint8(data, modality, "soft_tissue")[z]
    results["encoder"] = encoder_times(lite, frame, args.repeat)
    for name, row in results["encoder"].items():
        print(
            f"encoder {name:14s} {row['median_s'] * 1000:7.1f} ms  {row['speedup']:.2f}x eager  "
            f"max |diff| {row['max_abs_diff']:.2g}"
        )

    with tempfile.TemporaryDirectory() as cache:
        runs = {
            "eager, no cache (before)": EmbeddingOptions("torch", "f32", None),
            "openvino f32, cold cache": EmbeddingOptions("auto", "f32", EmbeddingStore(cache)),
            "openvino f32, warm cache": EmbeddingOptions("auto", "f32", EmbeddingStore(cache)),
            "openvino bf16, no cache": EmbeddingOptions("openvino", "bf16", None),
        }
        results["liver"] = {}
        for name, options in runs.items():
            row = liver_run(lite, data, spacing, modality, liver, options)
            results["liver"][name] = row
            print(
                f"liver {name:28s} {row['seconds']:7.1f} s  Dice {row['dice']:.3f}  "
                f"{row['slices']} slices  {row['store_hits']} from the disk cache"
            )
    base = results["liver"]["eager, no cache (before)"]["seconds"]
    warm = results["liver"]["openvino f32, warm cache"]["seconds"]
    results["warm_vs_eager_cold"] = warm / base
    print(f"warm cache vs eager cold: {warm / base:.3f}x (target <= 0.15x)")

    results["first_mask"] = first_mask_after_load(lite, data, spacing, modality, liver)
    fm = results["first_mask"]
    print(
        f"first mask with the precompute running: {fm['encoder_calls_for_the_prompt']} encoder "
        "call(s) for the "
        f"prompt (target <= 1); {fm['first_mask_s']:.2f} s = {fm['ratio']:.2f}x one idle call "
        f"({fm['one_encoder_call_s']:.2f} s; the background's slice in flight shares the cores)"
    )

    if args.big:
        with tempfile.TemporaryDirectory() as cache:
            out = subprocess.run(
                [sys.executable, __file__, "--big-child", cache],
                capture_output=True,
                text=True,
                check=True,
            )
        big = json.loads(out.stdout.strip().splitlines()[-1])
        big["over_volume_gib"] = (big["peak_rss_bytes"] - big["volume_bytes"]) / 1024**3
        results["big"] = big
        print(
            f"512x512x300: peak RSS {big['peak_rss_bytes'] / 1024**3:.2f} GiB, volume "
            f"{big['volume_bytes'] / 1024**3:.2f} GiB: volume + {big['over_volume_gib']:.2f} GiB "
            "(target <= 2)"
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"-> {args.json}")


if __name__ == "__main__":
    main()
