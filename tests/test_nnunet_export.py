"""nnU-Net v2 raw dataset export, checked by the rules nnU-Net's dataset integrity check applies."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import data_file
from napari_textseg.cli import main
from napari_textseg.core.io import read_volume, write_labels


def check_nnunet_raw_dataset(folder: Path) -> dict:
    """The checks of nnunetv2.experiment_planning.verify_dataset_integrity, with nibabel."""
    dataset = json.loads((folder / "dataset.json").read_text())
    for key in ("channel_names", "labels", "numTraining", "file_ending"):
        assert key in dataset, key
    labels = dataset["labels"]
    assert labels["background"] == 0
    assert sorted(labels.values()) == list(range(len(labels))), "labels must be consecutive from 0"
    ending = dataset["file_ending"]
    cases = sorted(p.name[: -len(ending)] for p in (folder / "labelsTr").glob(f"*{ending}"))
    assert len(cases) == dataset["numTraining"]
    for case in cases:
        seg = nib.load(folder / "labelsTr" / f"{case}{ending}")
        values = set(np.unique(np.asarray(seg.dataobj)).tolist())
        assert values <= set(labels.values()), (
            f"{case}: unexpected label values {values - set(labels.values())}"
        )
        for channel in range(len(dataset["channel_names"])):
            img = nib.load(folder / "imagesTr" / f"{case}_{channel:04d}{ending}")
            assert img.shape == seg.shape, case
            np.testing.assert_allclose(img.affine, seg.affine, atol=1e-5, err_msg=case)
    assert len(list((folder / "imagesTr").iterdir())) == len(cases) * len(dataset["channel_names"])
    return dataset


def test_two_cases_share_one_consecutive_label_table(tmp_path, capsys):
    ct, organs = data_file("abdomen_ct.nii.gz"), data_file("abdomen_ct_organs.nii.gz")
    ref = read_volume(organs)
    # A second annotation of the same scan with other values: liver as 1, a lesion as 7.
    second = np.zeros_like(ref.data, dtype=np.uint8)
    liver = next(v for v, n in ref.label_names.items() if n == "liver")
    second[ref.data == liver] = 1
    second[10:12, 40:44, 40:44] = 7
    other = tmp_path / "second.nii.gz"
    write_labels(other, second, geometry=ref.geometry, label_names={1: "liver", 7: "lesion"})
    assert (
        main(
            [
                "export-nnunet",
                "--case",
                str(ct),
                str(organs),
                "--case",
                str(ct),
                str(other),
                "-o",
                str(tmp_path),
                "--id",
                "501",
                "--name",
                "Abdomen",
            ]
        )
        == 0
    )
    folder = tmp_path / "Dataset501_Abdomen"
    dataset = check_nnunet_raw_dataset(folder)
    assert dataset["channel_names"] == {"0": "CT"} and dataset["numTraining"] == 2
    present = [
        v for v in np.unique(ref.data) if v
    ]  # named values absent from every case are left out
    assert "lesion" in dataset["labels"] and len(dataset["labels"]) == len(present) + 2
    # The liver has one value in both cases, and the voxels are where they were.
    cases = sorted((folder / "labelsTr").iterdir())
    first, again = (read_volume(p).data for p in cases)
    assert np.array_equal(first == dataset["labels"]["liver"], ref.data == liver)
    assert np.array_equal(again == dataset["labels"]["liver"], second == 1)
    assert np.array_equal(again == dataset["labels"]["lesion"], second == 7)
    image = read_volume(folder / "imagesTr" / "abdomen_ct_0000.nii.gz")
    assert np.array_equal(image.data, read_volume(ct).data)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--id", "0", "--name", "A"], "dataset id must be 1..999"),
        (["--id", "5", "--name", "bad name"], "may hold only"),
    ],
)
def test_bad_dataset_names_are_refused(args, message, tmp_path, capsys):
    ct, organs = data_file("abdomen_ct.nii.gz"), data_file("abdomen_ct_organs.nii.gz")
    assert main(["export-nnunet", "--case", str(ct), str(organs), "-o", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_labels_on_another_grid_are_refused(tmp_path, capsys):
    ct, nuclei = data_file("abdomen_ct.nii.gz"), data_file("nuclei_3d_labels.tif")
    assert (
        main(
            [
                "export-nnunet",
                "--case",
                str(ct),
                str(nuclei),
                "-o",
                str(tmp_path),
                "--id",
                "5",
                "--name",
                "X",
            ]
        )
        == 2
    )
    assert "must share one grid" in capsys.readouterr().err


def _fail_at_second_label_map(monkeypatch):
    """The disk fills while the second case's label map is written."""
    real, calls = nib.save, []

    def save(image, path, *args, **kwargs):
        calls.append(str(path))
        if "labelsTr" in str(path) and sum("labelsTr" in p for p in calls) == 2:
            raise OSError(28, "No space left on device")
        return real(image, path, *args, **kwargs)

    monkeypatch.setattr(nib, "save", save)


def test_a_dataset_that_fails_halfway_leaves_no_file_and_an_older_one_intact(
    tmp_path, capsys, monkeypatch
):
    """All or nothing (issue 27): half a dataset would train nnU-Net on the wrong case count."""
    ct, organs = data_file("abdomen_ct.nii.gz"), data_file("abdomen_ct_organs.nii.gz")
    one = [
        "export-nnunet",
        "--case",
        str(ct),
        str(organs),
        "-o",
        str(tmp_path),
        "--id",
        "7",
        "--name",
        "Abdomen",
    ]
    args = [*one, "--case", str(ct), str(organs)]
    with monkeypatch.context() as patch:
        _fail_at_second_label_map(patch)
        assert main(args) == 2
    assert "the disk is full" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # not even the folders
    assert main(one) == 0  # an older dataset: one case
    folder = tmp_path / "Dataset007_Abdomen"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    with monkeypatch.context() as patch:
        _fail_at_second_label_map(patch)
        assert main([*args, "--overwrite"]) == 2
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
