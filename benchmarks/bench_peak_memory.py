"""Peak memory of a full propagation through a 512 x 512 x 200 CT with SAM2.1-tiny on CPU.

Target: the peak resident memory added by the volume and the propagation stays within
the volume's own size + 2 GiB. The volume is the shared abdominal CT resampled to
200 x 512 x 512 (real intensities, int16 HU); the weights are random (the architecture
sets the memory, not the weights).

Usage::

    python benchmarks/bench_peak_memory.py [--slices 200] [--size 512] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from napari_textseg.core.io import read_volume
from napari_textseg.engine.interactive.propagate import PropagationSettings
from napari_textseg.engine.interactive.sam2_slices import Sam2SliceModel
from napari_textseg.engine.interactive.session import SegmentationSession
from napari_textseg.models.sam2 import build_sam2_model, load_sam2

REPO = Path(__file__).resolve().parents[1]
ARCH = {"config": "configs/sam2.1/sam2.1_hiera_t.yaml"}
GIB = 1024**3


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


class PeakSampler(threading.Thread):
    """Samples resident memory every 20 ms; ``peak`` is the largest value seen."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = _rss()
        self._halt = threading.Event()  # not _stop: threading.Thread has a method of that name

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.02)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return max(self.peak, _rss())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--image", default=str(REPO.parent / "shared" / "data" / "abdomen_ct.nii.gz")
    )
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512, help="in-plane size of the resampled CT")
    parser.add_argument("--json", default="benchmarks/results/peak_memory.json")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "tiny.pt"
        torch.save({"model": build_sam2_model(ARCH).state_dict()}, checkpoint)
        backend = Sam2SliceModel(load_sam2(ARCH, checkpoint), torch.device("cpu"))
    ct = read_volume(args.image)
    factors = (
        args.slices / ct.data.shape[0],
        args.size / ct.data.shape[1],
        args.size / ct.data.shape[2],
    )
    baseline = _rss()
    sampler = PeakSampler()
    sampler.start()
    start = time.perf_counter()
    volume = ndimage.zoom(ct.data, factors, order=1).astype(np.int16)
    session = SegmentationSession(volume, (1.0, 0.7, 0.7), "CT", backend)
    z0 = args.slices // 2
    session.set_prompts(np.array([[z0, args.size // 2, args.size // 3]]), np.array([1]))

    def report(done: int, total: int) -> None:
        if done % 20 == 0 or done == total:
            print(
                f"  {done}/{total} slices, {time.perf_counter() - start:.0f} s, "
                f"peak added so far {(sampler.peak - baseline) / GIB:.2f} GiB",
                flush=True,
            )

    session.propagate(PropagationSettings(empty_stop=0), progress=report)
    elapsed = time.perf_counter() - start
    peak = sampler.stop()
    added = peak - baseline
    budget = volume.nbytes + 2 * GIB
    result = {
        "shape": list(volume.shape),
        "volume_bytes": volume.nbytes,
        "baseline_rss": baseline,
        "peak_rss": peak,
        "added_bytes": added,
        "target_bytes": budget,
        "ratio_to_target": added / budget,
        "cache_bytes": session.cache.nbytes,
        "slices_visited": len(session.result.visited),
        "seconds": elapsed,
        "seconds_per_slice": elapsed / args.slices,
    }
    print(
        f"volume {volume.shape} int16 = {volume.nbytes / GIB:.2f} GiB; cache "
        f"{session.cache.nbytes / GIB:.2f} GiB"
    )
    print(
        f"peak added {added / GIB:.2f} GiB vs target {budget / GIB:.2f} GiB (volume + 2 GiB): "
        f"ratio {added / budget:.2f} (<= 1.00 meets it); {elapsed:.0f} s, "
        f"{elapsed / args.slices:.2f} s/slice"
    )
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
