"""The batch command: a cohort on Dask."""

from __future__ import annotations

import argparse
import sys

from napari_textseg.cli._common import count

__all__ = ["batch"]


def batch(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from tqdm import tqdm

    from napari_textseg.engine.jobs.batch import (
        BatchJob,
        check_job,
        close,
        connect,
        find_cases,
        run_batch,
    )

    prompts = {}
    if args.prompts:
        try:
            prompts = json.loads(Path(args.prompts).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read the prompts file {args.prompts}: {err}") from err
        if not isinstance(prompts, dict):
            raise ValueError(
                f"{args.prompts}: expected {{case id: [{{name, points, negative}}, ...]}}"
            )
    job = BatchJob(
        text=tuple(args.text),
        prompts=prompts,
        model=args.model,
        checkpoint=args.checkpoint,
        clip=args.clip,
        clip_checkpoint=args.clip_checkpoint,
        device=args.device,
        tolerance_mm=args.tolerance_mm,
    )
    cases = find_cases(args.source, args.output)
    check_job(job)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    earlier = sum(Path(c.output).exists() for c in cases)
    client = connect(args.scheduler, args.workers)
    try:
        with tqdm(total=len(cases), desc="cases", unit="case", file=sys.stderr) as bar:

            def progress(result, done, total) -> None:
                bar.n = done
                bar.set_postfix_str(f"{result.case_id}: {result.status}")
                if result.status == "error":
                    tqdm.write(f"{result.case_id}: error: {result.message}", file=sys.stderr)

            results = run_batch(cases, job, client, progress=progress, out_dir=args.output)
    finally:
        close(client)
    table = Path(args.output) / "results.csv"
    for r in results:
        scores = ", ".join(f"{n} Dice {m['dice']:.3f}" for n, m in r.metrics.items())
        print(f"{r.case_id:<24} {r.status:<8} {r.seconds:7.1f} s  {scores or r.message}")
    failed = sum(r.status == "error" for r in results)
    kept = f" ({earlier} from an earlier run)" if earlier else ""
    print(f"{len(results) - failed} of {count(len(results), 'case')} ok{kept} -> {table}")
    return 1 if failed else 0
