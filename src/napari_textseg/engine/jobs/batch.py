"""Batch labelling of a cohort on Dask distributed: one task per volume, resumable.

- Cases come from a manifest CSV (columns ``image``, optional ``reference`` and
  ``case``) or a glob of image files.
- Each case is one task. A worker loads each model once and keeps it for every later
  case it runs (the cache lives in the worker process).
- A case whose output already exists is skipped, so a re-run resumes a stopped batch.
  Outputs are written atomically: an output that exists is complete. ``results.json``
  and ``results.csv`` are rewritten (atomically) after every case, and a resumed run
  keeps each finished case's earlier record, figures included.
- The models and the packages they need are checked before any cluster starts.
- A failing case (unreadable file, bad prompts, a worker that died under it) is
  recorded with its reason; the other cases go on.
- With references, each output label is scored against the reference label of the
  same name (Dice, NSD).
"""

from __future__ import annotations

import csv
import glob
import os
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_textseg.core.errors import InputError
from napari_textseg.core.io.atomic import safe_stem
from napari_textseg.engine.jobs.batch_results import CaseResult, read_results, write_results

__all__ = [
    "BatchCase",
    "BatchJob",
    "CaseResult",
    "check_job",
    "close",
    "connect",
    "find_cases",
    "read_results",
    "run_batch",
    "run_case",
    "write_results",
]

OUTPUT_SUFFIX = ".nii.gz"
EARLIER = "output from an earlier run"


@dataclass(frozen=True)
class BatchCase:
    """One volume to label, where its result goes, and an optional reference."""

    case_id: str
    image: str
    output: str
    reference: str | None = None


@dataclass(frozen=True)
class BatchJob:
    """What every case runs: text targets, or per-case clicks from a prompts file."""

    text: tuple[str, ...] = ()
    # case id -> [{"name", "points", "negative", "boxes", "propagate"}]; boxes as --box: [z, y0,
    # x0, y1, x1]
    prompts: dict = field(default_factory=dict)
    model: str | None = None
    checkpoint: str | None = None
    clip: str | None = None
    clip_checkpoint: str | None = None
    device: str | None = None
    tolerance_mm: float = 2.0

    def __post_init__(self) -> None:
        if bool(self.text) == bool(self.prompts):
            raise InputError(
                "a batch runs either --text targets or a --prompts file (exactly one of them)"
            )
        if self.text and not (self.model or self.checkpoint):
            raise InputError(
                "text targets in a batch need a SAM/SAM2 model: --model ID or --checkpoint FILE"
            )

    @property
    def model_id(self) -> str | None:
        """The model to load: the one named, else (prompts files) the installed box model, as
        segment uses."""
        from napari_textseg.models.registry import DEFAULT_MODEL

        return self.model or (None if self.checkpoint else DEFAULT_MODEL)


def check_job(job: BatchJob) -> None:
    """Refuse, on the client and before a cluster starts, a job whose models cannot load:
    not downloaded, a checkpoint file missing, a package not installed, text without CLIP."""
    from napari_textseg.models.store import (
        CLI_CLIP_WORDING,
        CLI_WORDING,
        check_installed,
        resolve_checkpoint,
    )

    card, _ = resolve_checkpoint(job.model_id, job.checkpoint, CLI_WORDING)
    check_installed(card)
    if job.text and _text_plan(card.family).needs_clip:
        if not (job.clip or job.clip_checkpoint):
            raise InputError(_NO_CLIP)
        clip, _ = resolve_checkpoint(job.clip, job.clip_checkpoint, CLI_CLIP_WORDING)
        check_installed(clip)


_NO_CLIP = "text targets need a CLIP model (--clip or --clip-checkpoint), or a SAM3 model"


def _text_plan(family: str, modality: str = "", device_type: str = "cpu"):
    """The plan of a batch text run: CLIP + SAM with the job's model (SAM3 reads the text
    itself); the same rules as the panel and ``label``."""
    from napari_textseg.engine.text.plan import plan_text_run

    return plan_text_run(
        "clip-sam",
        modality=modality,
        device_type=device_type,
        model_named=True,
        model_family=family,
    )


def find_cases(source: str, out_dir: str | os.PathLike) -> list[BatchCase]:
    """Cases from a manifest ``.csv`` (relative paths are relative to it) or a glob pattern."""
    out = Path(out_dir)
    if source.lower().endswith(".csv"):
        manifest = Path(source)
        if not manifest.is_file():
            raise InputError(f"the manifest {manifest} does not exist")
        with open(manifest, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or "image" not in rows[0]:
            raise InputError(
                f"{manifest.name} needs a header with an 'image' column (optional: reference, case)"
            )
        base = manifest.parent

        def resolve(value: str | None) -> str | None:
            return str(base / value) if value and not Path(value).is_absolute() else (value or None)

        items = [
            (resolve(r["image"]), resolve(r.get("reference")), (r.get("case") or "").strip())
            for r in rows
        ]
    else:
        paths = sorted(glob.glob(source))
        if not paths:
            raise InputError(f"no file matches {source!r}")
        items = [(p, None, "") for p in paths]
    cases, seen = [], set()
    for image, reference, case in items:
        if not image:
            raise InputError("a manifest row has an empty 'image' cell")
        case_id = case or safe_stem(image, also=".")
        if case_id in seen:
            raise InputError(
                f"two cases are called {case_id!r}; give them a 'case' column in the manifest"
            )
        seen.add(case_id)
        cases.append(BatchCase(case_id, image, str(out / f"{case_id}{OUTPUT_SUFFIX}"), reference))
    return cases


# -- on the worker ----------------------------------------------------------------------

_MODELS: dict[tuple, object] = {}
_LOADS = {"count": 0}


def _model(model_id: str | None, checkpoint: str | None, device: str | None, clip: bool = False):
    """Load a model once per worker process and keep it for the next cases."""
    from napari_textseg.models.loader import load_model
    from napari_textseg.models.store import CLI_CLIP_WORDING, CLI_WORDING

    key = (model_id, checkpoint, device)
    if key not in _MODELS:
        _MODELS[key] = load_model(
            model_id, checkpoint, device=device, wording=CLI_CLIP_WORDING if clip else CLI_WORDING
        )
        _LOADS["count"] += 1
    return _MODELS[key]


def _bad_box(case_id: str, box: object):
    raise InputError(f"{case_id}: box {box} must be [z, y0, x0, y1, x1] in voxels, as --box")


def _segment_prompts(volume, job: BatchJob, case: BatchCase) -> tuple[np.ndarray, dict[int, str]]:
    from napari_textseg.engine.interactive.prompts import voxel_indices
    from napari_textseg.engine.interactive.propagate import PropagationSettings
    from napari_textseg.engine.jobs.pipelines import segment_clicks

    objects = job.prompts.get(case.case_id)
    if not objects:
        raise InputError(f"the prompts file has no clicks or boxes for case {case.case_id!r}")
    sam = _model(job.model_id, job.checkpoint, job.device)
    labels = np.zeros(volume.spatial_shape, dtype=np.uint16)
    names = {}
    for value, obj in enumerate(objects, start=1):
        positive, negative = (
            np.array(
                [voxel_indices(p, f"{case.case_id}: {key} {p}") for p in obj.get(key, [])],
                dtype=float,
            ).reshape(-1, 3)
            for key in ("points", "negative")
        )
        signs = np.r_[np.ones(len(positive)), np.zeros(len(negative))].astype(int)
        boxes = {}
        for box in obj.get("boxes", []):
            z, *corners = (
                voxel_indices(box, f"{case.case_id}: box {box}")
                if len(box) == 5
                else _bad_box(case.case_id, box)
            )
            boxes[int(z)] = tuple(float(v) for v in corners)
        settings = PropagationSettings() if obj.get("propagate", True) else None
        mask = segment_clicks(
            volume, sam, np.vstack([positive, negative]), signs, boxes or None, propagate=settings
        )
        labels[mask & (labels == 0)] = value  # earlier objects keep their voxels
        names[value] = str(obj.get("name") or f"object {value}")
    return labels, names


def _score(labels: np.ndarray, names: dict[int, str], reference: str, tolerance_mm: float) -> dict:
    from napari_textseg.core.io import read_volume
    from napari_textseg.core.metrics import dice, nsd

    ref = read_volume(reference)
    if ref.spatial_shape != labels.shape:
        raise InputError(f"the reference is {ref.spatial_shape} voxels, the image {labels.shape}")
    by_name = {n.casefold(): v for v, n in (ref.label_names or {}).items()}
    scores = {}
    for value, name in names.items():
        ref_value = by_name.get(name.casefold())
        if ref_value is None:
            continue
        p, r = labels == value, ref.data == ref_value
        scores[name] = {"dice": dice(p, r), "nsd": nsd(p, r, ref.spacing, tolerance_mm)}
    return scores


def _existing_output(
    case: BatchCase, job: BatchJob, result: CaseResult | None = None
) -> CaseResult:
    """A case whose output exists (complete: outputs are written atomically) but whose record
    is lost: done, not run again, and scored from that output when it has a reference."""
    from napari_textseg.core.io import read_volume

    result = result or CaseResult(case.case_id, "done", output=case.output)
    result.status, result.message = "done", EARLIER
    if case.reference:
        try:
            written = read_volume(case.output)
            result.metrics = _score(
                written.data, written.label_names or {}, case.reference, job.tolerance_mm
            )
        except Exception as err:  # the figures are a bonus here; the output stays
            result.message = f"{EARLIER}; cannot score it: {err}"
    return result


def run_case(case: BatchCase, job: BatchJob) -> CaseResult:
    """Label one case (on a worker); never raises: errors come back in the result."""
    import socket

    from napari_textseg.core.io import read_volume, write_labels

    start = time.perf_counter()
    result = CaseResult(
        case.case_id, "done", output=case.output, worker=f"{socket.gethostname()}:{os.getpid()}"
    )
    if Path(case.output).exists():
        return _existing_output(case, job, result)
    try:
        volume = read_volume(case.image)
        if job.text:
            from napari_textseg.core.text_prompts import parse_targets
            from napari_textseg.engine.jobs.pipelines import label_text

            targets = parse_targets("\n".join(job.text))
            sam = _model(job.model_id, job.checkpoint, job.device)
            plan = _text_plan(sam.card.family, volume.modality, sam.device.type)
            backend = plan.check()
            if plan.needs_clip and not (job.clip or job.clip_checkpoint):
                raise InputError(_NO_CLIP)
            clip = (
                _model(job.clip, job.clip_checkpoint, job.device, clip=True)
                if plan.needs_clip
                else None
            )
            made = label_text(volume, targets, sam, clip, backend=backend)  # type: ignore[arg-type]
            labels, names = made.labels, made.names
        else:
            labels, names = _segment_prompts(volume, job, case)
        Path(case.output).parent.mkdir(parents=True, exist_ok=True)
        write_labels(
            case.output,
            labels,
            geometry=volume.geometry,
            scale=volume.spacing,
            translate=volume.origin,
            label_names=names,
        )
        if case.reference:
            result.metrics = _score(labels, names, case.reference, job.tolerance_mm)
    except Exception as err:  # one bad case must not stop the cohort
        result.status = "error"
        result.message = (
            f"{type(err).__name__}: {err}" if str(err) else traceback.format_exc(limit=2)
        )
    result.seconds = time.perf_counter() - start
    result.model_loads = _LOADS["count"]
    return result


# -- on the client ----------------------------------------------------------------------


def connect(scheduler: str | None = None, n_workers: int | None = None, timeout_s: float = 10.0):
    """A Dask client: to ``scheduler`` (an address), or to a new LocalCluster of processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=f"{timeout_s}s")
        except (OSError, TimeoutError) as err:
            raise InputError(
                f"cannot reach the Dask scheduler at {scheduler} ({err}); "
                "check the address, or leave --scheduler out to run on this machine"
            ) from err
    workers = n_workers or max(1, min(4, (os.cpu_count() or 2) // 2))
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(cluster)


def close(client) -> None:
    """Close ``client`` and the local cluster :func:`connect` started for it, letting each
    worker finish its shutdown (a remote scheduler's cluster is left running)."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close(timeout=60)


def run_batch(
    cases: Iterable[BatchCase],
    job: BatchJob,
    client,
    *,
    runner: Callable[[BatchCase, BatchJob], CaseResult] = run_case,
    progress: Callable[[CaseResult, int, int], None] | None = None,
    out_dir: str | os.PathLike | None = None,
) -> list[CaseResult]:
    """Run every case as one task on ``client``; results in case order.

    Missing inputs are reported without a task. When a worker dies, Dask may give up on
    every task it held, not only the one that killed it; so cases lost that way run
    once more, one at a time, and only a case that fails alone is reported as an error.

    With ``out_dir``, the results files there are rewritten after every case (an
    interrupted run keeps what finished), and a case whose output exists keeps the
    record an earlier run left for it.
    """
    from distributed import as_completed

    cases = list(cases)
    previous = read_results(out_dir) if out_dir is not None else {}
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    results: dict[str, CaseResult] = {}

    def record(result: CaseResult) -> None:
        results[result.case_id] = result
        if out_dir is not None:
            known = (results.get(c.case_id) or previous.get(c.case_id) for c in cases)
            write_results([r for r in known if r is not None], out_dir)
        if progress is not None:
            progress(result, len(results), len(cases))

    def submit(case: BatchCase, attempt: str):
        return client.submit(
            runner, case, job, key=f"textseg-{case.case_id}-{attempt}{time.time_ns()}", pure=False
        )

    futures = {}
    for case in cases:
        missing = [p for p in (case.image, case.reference) if p and not Path(p).exists()]
        if missing:
            record(CaseResult(case.case_id, "error", message=f"missing file: {', '.join(missing)}"))
        elif Path(case.output).exists():
            earlier = previous.get(case.case_id)
            finished = (
                earlier is not None and earlier.status == "done" and earlier.output == case.output
            )
            record(earlier if finished else _existing_output(case, job))  # type: ignore[arg-type]
        else:
            futures[submit(case, "")] = case
    lost = []
    try:
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception:  # KilledWorker, a lost connection, ...: try again alone below
                lost.append(futures[future])
                continue
            record(result)
    except BaseException:  # interrupted: cases not started yet stay for the next run
        client.cancel(list(futures))
        raise
    for case in lost:
        try:
            result = submit(case, "retry-").result()
        except Exception as err:
            result = CaseResult(
                case.case_id,
                "error",
                message=f"the task failed on the cluster: {type(err).__name__}: {err}",
            )
        record(result)
    return [results[c.case_id] for c in cases]
