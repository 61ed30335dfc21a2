"""The evaluate and volumes commands on the real CT labels: tables, reports, grid checks."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from conftest import data_file
from napari_textseg.cli import main
from napari_textseg.core.io import read_volume, write_labels


@pytest.fixture
def organs():
    return read_volume(data_file("abdomen_ct_organs.nii.gz"))


@pytest.fixture
def shifted_prediction(organs, tmp_path):
    """The reference organs moved one voxel along y, written on the source grid with names."""
    pred = np.roll(organs.data, 1, axis=1)
    path = tmp_path / "pred.nii.gz"
    write_labels(
        path,
        pred,
        geometry=organs.geometry,
        scale=organs.spacing,
        translate=organs.origin,
        label_names=organs.label_names,
    )
    return path


def test_evaluate_prints_named_rows_and_writes_json(organs, shifted_prediction, tmp_path, capsys):
    out = tmp_path / "report.json"
    ref = data_file("abdomen_ct_organs.nii.gz")
    assert (
        main(
            [
                "evaluate",
                str(shifted_prediction),
                str(ref),
                "--labels",
                "liver,spleen",
                "--tolerance-mm",
                "3",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "liver" in table and "spleen" in table and "NSD@3mm" in table and "kidney" not in table
    report = json.loads(out.read_text())
    liver = next(r for r in report["labels"] if r["name"] == "liver")
    # A 3 mm shift: every surface point is within 3 mm of the other surface, overlap is not perfect.
    assert liver["nsd"] == 1.0 and 0.8 < liver["dice"] < 1.0 and liver["hd95"] == pytest.approx(3.0)
    assert liver["pred_volume"] == pytest.approx(liver["ref_volume"], rel=0.02)


def test_evaluate_csv_keeps_missing_labels(organs, tmp_path, capsys):
    pred = np.where(organs.data == 5, 0, organs.data)  # the liver was missed
    path = tmp_path / "missed.nii.gz"
    write_labels(path, pred, geometry=organs.geometry, label_names=organs.label_names)
    out = tmp_path / "report.csv"
    assert (
        main(["evaluate", str(path), str(data_file("abdomen_ct_organs.nii.gz")), "--csv", str(out)])
        == 0
    )
    rows = {r["name"]: r for r in csv.DictReader(out.open())}
    assert rows["liver"]["present"] == "reference only" and float(rows["liver"]["dice"]) == 0.0
    assert rows["liver"]["hd95"] == "inf" and float(rows["spleen"]["dice"]) == 1.0


def test_a_prediction_only_label_is_reported_under_its_own_value(organs, tmp_path, capsys):
    """Issue 27: a label of value 1 with no namesake in the reference was printed as value 41."""
    pred = np.zeros_like(organs.data, dtype=np.uint8)
    pred[organs.data == 5] = 1
    path = tmp_path / "one.nii.gz"
    write_labels(path, pred, geometry=organs.geometry, label_names={1: "organ one"})
    assert main(["evaluate", str(path), str(data_file("abdomen_ct_organs.nii.gz"))]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "organ one" in line)
    assert row.split()[0] == "1" and row.endswith("prediction only")


def test_evaluate_refuses_other_grids(organs, tmp_path, capsys):
    ref = data_file("abdomen_ct_organs.nii.gz")
    img = nib.load(ref)
    moved = tmp_path / "moved.nii.gz"
    affine = img.affine.copy()
    affine[:3, 3] += 5.0
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), affine, img.header), moved)
    assert main(["evaluate", str(moved), str(ref)]) == 2
    assert "lie differently in space" in capsys.readouterr().err
    assert main(["evaluate", str(data_file("nuclei_3d_labels.tif")), str(ref)]) == 2
    assert "never resamples" in capsys.readouterr().err
    assert main(["evaluate", str(ref), str(ref), "--labels", "pancreas_tail_x"]) == 2
    assert "unknown label 'pancreas_tail_x'" in capsys.readouterr().err


def test_evaluate_instances_on_the_nuclei(tmp_path, capsys):
    ref = read_volume(data_file("nuclei_3d_labels.tif"))
    ids = [v for v in np.unique(ref.data) if v]
    pred = np.where(np.isin(ref.data, ids[:3]), 0, ref.data)
    path = tmp_path / "pred.tif"
    write_labels(path, pred, geometry=ref.geometry, scale=ref.spacing)
    out = tmp_path / "inst.json"
    assert (
        main(
            [
                "evaluate",
                str(path),
                str(data_file("nuclei_3d_labels.tif")),
                "--instances",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    scores = json.loads(out.read_text())["instances"]
    assert scores["false_negatives"] == 3 and scores["true_positives"] == len(ids) - 3
    assert "FN 3" in capsys.readouterr().out


def test_volumes_csv_in_millilitres(tmp_path, capsys):
    out = tmp_path / "volumes.csv"
    assert main(["volumes", str(data_file("abdomen_ct_organs.nii.gz")), "--csv", str(out)]) == 0
    rows = {r["name"]: r for r in csv.DictReader(out.open())}
    # 3 mm isotropic voxels are 27 uL each.
    assert float(rows["liver"]["volume_mL"]) == pytest.approx(int(rows["liver"]["voxels"]) * 0.027)
    assert "liver" in capsys.readouterr().out


def test_one_object_named_on_the_command_line_pairs_with_its_reference_label(
    organs, tmp_path, capsys
):
    """A kidney segmented as 'object' scores against kidney_left with --name, and the
    headline mean is that organ's score, not a 41st of it (before: 'prediction only', 0.0225)."""
    value = {v: k for k, v in organs.label_names.items()}["kidney_left"]
    kidney = np.roll(organs.data == value, 1, axis=1)
    path = tmp_path / "object.nii.gz"
    write_labels(
        path,
        kidney.astype(np.uint8),
        geometry=organs.geometry,
        scale=organs.spacing,
        translate=organs.origin,
        label_names={1: "object"},
    )
    report = tmp_path / "r.json"
    assert (
        main(
            [
                "evaluate",
                str(path),
                str(data_file("abdomen_ct_organs.nii.gz")),
                "--name",
                "left kidney",
                "--json",
                str(report),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    rows = json.loads(report.read_text())
    kidney_row = next(r for r in rows["labels"] if r["name"] == "kidney_left")
    assert kidney_row["present"] == "both" and kidney_row["dice"] > 0.8
    assert rows["mean"]["dice"] == pytest.approx(kidney_row["dice"])
    assert rows["mean_all"]["dice"] < 0.1
    assert "mean, 1 predicted" in out and "mean, all" in out
    assert (
        main(["evaluate", str(path), str(data_file("abdomen_ct_organs.nii.gz")), "--name", "livr"])
        == 2
    )
    assert "no label named 'livr' in the reference; did you mean liver?" in capsys.readouterr().err
