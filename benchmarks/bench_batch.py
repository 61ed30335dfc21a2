"""Batch throughput on a Dask LocalCluster: one worker against two, same cohort, same run.

The cohort is the shared CT and MRI, each listed ``--copies`` times under different
case ids, with one click each and propagation, segmented by the shipped phantom SAM.
The baseline (1 worker) and the measured run (2 workers) write to fresh folders.

Usage::

    python benchmarks/bench_batch.py [--copies 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from napari_textseg.core.io import read_volume
from napari_textseg.engine.jobs.batch import BatchJob, connect, find_cases, run_batch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def _run(manifest: Path, job: BatchJob, out: Path, workers: int) -> tuple[float, list]:
    client = connect(n_workers=workers)
    try:
        client.wait_for_workers(workers)
        start = time.perf_counter()
        results = run_batch(find_cases(str(manifest), out), job, client)
        return time.perf_counter() - start, results
    finally:
        client.close()
        client.cluster.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args(argv)
    images = {"ct": DATA / "abdomen_ct.nii.gz", "mr": DATA / "abdomen_mr.nii.gz"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows, prompts = ["case,image"], {}
        for name, path in images.items():
            centre = [s // 2 for s in read_volume(path).spatial_shape]
            for k in range(args.copies):
                rows.append(f"{name}_{k},{path}")
                prompts[f"{name}_{k}"] = [{"name": "object", "points": [centre]}]
        manifest = tmp / "cohort.csv"
        manifest.write_text("\n".join(rows) + "\n")
        job = BatchJob(prompts=prompts, model="phantom_sam")
        one, results_one = _run(manifest, job, tmp / "one", 1)
        two, results_two = _run(manifest, job, tmp / "two", 2)
    ok = sum(r.status == "done" for r in results_two)
    loads = {r.worker: r.model_loads for r in results_two}
    print(f"{len(results_two)} cases ({ok} done); model loads per worker: {json.dumps(loads)}")
    print(
        f"1 worker {one:.1f} s, 2 workers {two:.1f} s: speed-up {one / two:.2f}x "
        f"({len(results_two) / two * 60:.1f} cases/min)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
