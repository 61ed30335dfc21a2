"""Batch mode on a Dask LocalCluster with the shared volumes: outputs, resume, per-case errors."""

from __future__ import annotations

import csv
import json
import os
import sys

import cloudpickle
import dask
import distributed  # noqa: F401  (loads its config defaults before the fixture reads them)
import numpy as np
import pytest
from scipy import ndimage

from conftest import data_file
from napari_textseg.cli import main
from napari_textseg.core.errors import InputError
from napari_textseg.core.io import read_volume
from napari_textseg.engine.jobs.batch import BatchJob, connect, find_cases, run_batch, run_case

pytestmark = pytest.mark.timeout(600)


def _liver_click(organs) -> list[float]:
    liver = organs.data == next(v for v, n in organs.label_names.items() if n == "liver")
    z = int(np.argmax(liver.sum(axis=(1, 2))))
    depth = ndimage.distance_transform_edt(liver[z])
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return [float(z), float(y), float(x)]


@pytest.fixture(scope="module")
def cluster():
    # A task that kills its worker is given up at once (Dask's default retries it 3 times,
    # restarting a worker each time); run_batch's own retry pass still re-runs it once.
    previous = dask.config.get("distributed.scheduler.allowed-failures")
    dask.config.set({"distributed.scheduler.allowed-failures": 0})
    client = connect(n_workers=2)
    yield client
    client.close()
    client.cluster.close()
    dask.config.set({"distributed.scheduler.allowed-failures": previous})


@pytest.fixture
def cohort(tmp_path):
    """A manifest: the CT (with its reference) twice under two case ids, the MRI, and a missing
    scan."""
    ct, organs = data_file("abdomen_ct.nii.gz"), data_file("abdomen_ct_organs.nii.gz")
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(
        "case,image,reference\n"
        f"ct_a,{ct},{organs}\n"
        f"ct_b,{ct},{organs}\n"
        f"mr,{data_file('abdomen_mr.nii.gz')},\n"
        "lost,scans/missing.nii.gz,\n"
    )
    click = _liver_click(read_volume(organs))
    mr = read_volume(data_file("abdomen_mr.nii.gz"))
    centre = [s // 2 for s in mr.spatial_shape]
    prompts = {case: [{"name": "liver", "points": [click]}] for case in ("ct_a", "ct_b")}
    prompts["mr"] = [{"name": "kidney", "points": [centre], "propagate": False}]
    prompts_file = tmp_path / "prompts.json"
    prompts_file.write_text(json.dumps(prompts))
    return manifest, prompts_file, tmp_path / "out"


def test_cohort_runs_resumes_and_reports_missing_files(cluster, cohort, monkeypatch):
    manifest, prompts_file, out = cohort
    job = BatchJob(prompts=json.loads(prompts_file.read_text()), model="phantom_sam")
    cases = find_cases(str(manifest), out)
    results = {r.case_id: r for r in run_batch(cases, job, cluster)}
    assert results["lost"].status == "error" and "missing.nii.gz" in results["lost"].message
    for case in ("ct_a", "ct_b", "mr"):
        assert results[case].status == "done", results[case].message
    # Outputs lie on the source grid, named.
    ct = read_volume(data_file("abdomen_ct.nii.gz"))
    written = read_volume(out / "ct_a.nii.gz")
    assert written.data.shape == ct.data.shape and written.label_names == {1: "liver"}
    np.testing.assert_allclose(written.geometry.affine, ct.geometry.affine)
    assert written.data.any()
    # Scored against the reference label of the same name.
    assert 0.0 <= results["ct_a"].metrics["liver"]["dice"] <= 1.0
    # Each worker loaded the model once however many cases it ran.
    assert all(r.model_loads == 1 for r in results.values() if r.status == "done")
    # A second run does not compute finished cases again, and still scores them from their outputs.
    again = {r.case_id: r for r in run_batch(cases, job, cluster)}
    assert [again[c].message for c in ("ct_a", "ct_b", "mr")] == ["output from an earlier run"] * 3
    assert again["ct_a"].metrics["liver"] == pytest.approx(results["ct_a"].metrics["liver"])


_TIMING = ("seconds", "worker", "model_loads", "message")


def _table(folder) -> list[dict]:
    """results.csv without what differs from run to run (time, worker) and with output names
    only."""
    rows = list(csv.DictReader((folder / "results.csv").open()))
    return [
        {k: os.path.basename(v) if k == "output" else v for k, v in r.items() if k not in _TIMING}
        for r in rows
    ]


def test_an_interrupted_batch_resumes_to_the_same_results_table(cluster, cohort, tmp_path):
    manifest, prompts_file, out = cohort
    job = BatchJob(prompts=json.loads(prompts_file.read_text()), model="phantom_sam")
    whole = tmp_path / "whole"
    run_batch(find_cases(str(manifest), whole), job, cluster, out_dir=whole)

    def stop_after_two(result, done, total) -> None:
        if done == 2:
            raise KeyboardInterrupt  # Ctrl+C after the missing scan and one finished case

    cases = find_cases(str(manifest), out)
    with pytest.raises(KeyboardInterrupt):
        run_batch(cases, job, cluster, progress=stop_after_two, out_dir=out)
    interrupted = _table(out)
    assert len(interrupted) == 2 and any(r["status"] == "done" for r in interrupted)
    finished = next(r for r in interrupted if r["status"] == "done")
    run_batch(cases, job, cluster, out_dir=out)
    assert _table(out) == _table(whole)
    kept = next(r for r in _table(out) if r["case_id"] == finished["case_id"])
    assert kept == finished  # its figures survive the resume
    assert json.loads((out / "results.json").read_text())[0]["case_id"] == "ct_a"


def _dying_runner(case, job):
    if case.case_id == "ct_b":
        os._exit(1)  # the worker process dies mid-task
    return run_case(case, job)


def test_a_worker_dying_mid_batch_fails_only_its_case(cluster, cohort):
    manifest, prompts_file, out = cohort
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    job = BatchJob(prompts=json.loads(prompts_file.read_text()), model="phantom_sam")
    cases = [c for c in find_cases(str(manifest), out) if c.case_id != "lost"]
    results = {r.case_id: r for r in run_batch(cases, job, cluster, runner=_dying_runner)}
    assert results["ct_b"].status == "error" and "KilledWorker" in results["ct_b"].message
    # The others finish (a result lost with a dying worker is found again as its written output).
    for case in ("ct_a", "mr"):
        assert results[case].status in ("done", "skipped") and (out / f"{case}.nii.gz").exists()
    assert not (out / "ct_b.nii.gz").exists()


def test_batch_command_writes_the_results_table(cohort, capsys):
    manifest, prompts_file, out = cohort
    code = main(
        [
            "batch",
            str(manifest),
            "--prompts",
            str(prompts_file),
            "--model",
            "phantom_sam",
            "-o",
            str(out),
            "--workers",
            "1",
        ]
    )
    assert code == 1  # one case (the missing scan) failed; the others are done
    rows = {r["case_id"]: r for r in csv.DictReader((out / "results.csv").open())}
    assert rows["ct_a"]["status"] == "done" and rows["lost"]["status"] == "error"
    assert float(rows["ct_a"]["dice_liver"]) >= 0.0
    assert "3 of 4 cases ok" in capsys.readouterr().out
    # Run again: nothing is recomputed and the finished cases keep their figures.
    assert (
        main(
            [
                "batch",
                str(manifest),
                "--prompts",
                str(prompts_file),
                "--model",
                "phantom_sam",
                "-o",
                str(out),
                "--workers",
                "1",
            ]
        )
        == 1
    )
    again = {r["case_id"]: r for r in csv.DictReader((out / "results.csv").open())}
    assert again["ct_a"] == rows["ct_a"]
    assert "3 of 4 cases ok (3 from an earlier run)" in capsys.readouterr().out


def test_a_batch_whose_model_cannot_load_is_refused_before_the_cluster_starts(
    cohort, tmp_path, capsys, monkeypatch
):
    manifest, prompts_file, out = cohort
    monkeypatch.setenv("NAPARI_TEXTSEG_CACHE", str(tmp_path / "empty_cache"))
    started = []
    monkeypatch.setattr(
        "napari_textseg.engine.jobs.batch.connect", lambda *a, **k: started.append(1)
    )
    code = main(
        [
            "batch",
            str(manifest),
            "--prompts",
            str(prompts_file),
            "--model",
            "sam_vit_b",
            "-o",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "sam_vit_b is not downloaded yet" in err[0]
    code = main(
        ["batch", str(manifest), "--text", "liver", "--model", "phantom_sam", "-o", str(out)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "need a CLIP model" in err[0]
    assert not started and not out.exists()


def test_unreachable_scheduler_and_bad_jobs_are_refused():
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        connect("tcp://127.0.0.1:9", timeout_s=2)
    with pytest.raises(InputError, match="exactly one"):
        BatchJob(text=("liver",), prompts={"a": []}, model="phantom_sam")
    with pytest.raises(InputError, match="no file matches"):
        find_cases("/nonexistent/*.nii.gz", "out")


def test_text_targets_on_a_threaded_cluster_are_named_and_scored(tmp_path):
    from distributed import Client

    from tiny_models import TINY_DENSE_CLIP_ARCH, save_tiny_clip, tiny_card

    # Threads, so the tiny CLIP card registered here is visible to the worker.
    tiny_card("clip", TINY_DENSE_CLIP_ARCH, "test_batch_clip", "dense_clip.bin")
    clip_file = tmp_path / "dense_clip.bin"
    save_tiny_clip(clip_file, TINY_DENSE_CLIP_ARCH)
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(
        f"image,reference\n{data_file('abdomen_ct.nii.gz')},{data_file('abdomen_ct_organs.nii.gz')}\n"
    )
    job = BatchJob(
        text=("liver",), model="phantom_sam", clip="test_batch_clip", clip_checkpoint=str(clip_file)
    )
    with Client(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
    ) as client:
        (result,) = run_batch(find_cases(str(manifest), tmp_path / "out"), job, client)
    assert result.status == "done", result.message
    assert list(read_volume(result.output).label_names.values()) == ["liver"]
    assert set(result.metrics) == {"liver"} and 0.0 <= result.metrics["liver"]["nsd"] <= 1.0
    no_clip = BatchJob(text=("liver",), model="phantom_sam")
    (refused,) = [run_case(c, no_clip) for c in find_cases(str(manifest), tmp_path / "other")]
    assert refused.status == "error" and "need a CLIP model" in refused.message


def test_a_glob_and_boxes_run_the_default_box_model(tmp_path, capsys):
    """The glob form from batch's own --help, and a prompts file with boxes: LiteMedSAM, the
    default model, labels the liver (before: the glob was 'no such file', LiteMedSAM refused)."""
    import shutil

    organs = read_volume(data_file("abdomen_ct_organs.nii.gz"))
    liver = organs.data == next(v for v, n in organs.label_names.items() if n == "liver")
    zs = np.nonzero(liver.any(axis=(1, 2)))[0]
    z = int((zs.min() + zs.max()) // 2)
    ys, xs = np.nonzero(liver[z])
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(data_file("abdomen_ct.nii.gz"), scans / "ct1.nii.gz")
    prompts = tmp_path / "prompts.json"
    box = [z, int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1]
    prompts.write_text(
        json.dumps({"ct1": [{"name": "liver", "boxes": [box], "points": [[z, 50, 50]]}]})
    )
    code = main(
        [
            "batch",
            str(scans / "*.nii.gz"),
            "--prompts",
            str(prompts),
            "-o",
            str(tmp_path / "out"),
            "--workers",
            "1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    labels = read_volume(tmp_path / "out" / "ct1.nii.gz")
    from napari_textseg.core.metrics import dice

    assert labels.label_names == {1: "liver"} and dice(labels.data == 1, liver) > 0.75
