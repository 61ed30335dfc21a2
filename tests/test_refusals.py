"""Every bad input we know of gets one clear line and exit 2, and nothing already written is lost.

The table below is the one in docs/refusals.md: a case added here must be added there
(the last test checks that each case's key words appear in that file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import tifffile

from conftest import data_file
from napari_textseg.cli import main

CT, ORGANS = str(data_file("abdomen_ct.nii.gz")), str(data_file("abdomen_ct_organs.nii.gz"))
NUCLEI_LABELS = str(data_file("nuclei_3d_labels.tif"))
BOX = ["--box", "15,40,40,60,60"]  # a box on the CT's middle slice
CLICK = ["--point", "15,50,40", "--model", "phantom_sam"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    """Broken, empty, wrong-kind and blank files, written once."""
    d = tmp_path_factory.mktemp("bad")
    ct = nib.load(CT)
    data = np.asarray(ct.dataobj)
    (d / "cut.nii.gz").write_bytes(Path(CT).read_bytes()[:5000])
    (d / "empty.nii.gz").write_bytes(b"")
    (d / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    nib.save(nib.Nifti1Image(np.stack([data, data], -1), ct.affine), d / "4d.nii.gz")
    nib.save(nib.Nifti1Image(data[:, :, 10], ct.affine), d / "2d.nii.gz")
    tifffile.imwrite(d / "rgb.tif", np.zeros((10, 32, 32, 3), np.uint8), photometric="rgb")
    nib.save(nib.Nifti1Image(np.full(data.shape, np.nan, np.float32), ct.affine), d / "nan.nii.gz")
    nib.save(nib.Nifti1Image(np.full(data.shape, 7, np.int16), ct.affine), d / "const.nii.gz")
    huge = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4))
    huge.header.set_data_shape((30000, 30000, 30000))  # a header promising 54 TB
    (d / "huge.nii").write_bytes(huge.header.binaryblock + bytes(4) + bytes(16))
    (d / "notes.pth").write_text("the checkpoint is on the lab drive\n")
    (d / "cut.pth").write_bytes(b"PK\x03\x04" + bytes(200))  # a zip archive cut short
    return d


def _no_network(monkeypatch) -> None:
    monkeypatch.setattr("napari_textseg.models.store._reachable", lambda *a, **k: False)


def _no_display(monkeypatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)


def _disk_full_at_the_names(monkeypatch) -> None:
    import napari_textseg.core.io.sidecar as sidecar

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    # the names file alone meets the full disk (json itself stays whole for everything else)
    monkeypatch.setattr(
        sidecar,
        "json",
        SimpleNamespace(
            dumps=full,
            dump=full,
            loads=json.loads,
            load=json.load,
            JSONDecodeError=json.JSONDecodeError,
        ),
    )


# (case, arguments, key words of the message, what else the case needs)
# {bad} is the folder of broken files, {out} a fresh folder for outputs.
CASES = [
    ("missing file", ["info", "{bad}/missing.nii.gz"], "no such file", None),
    ("truncated file", ["info", "{bad}/cut.nii.gz"], "truncated or corrupt", None),
    ("empty file", ["info", "{bad}/empty.nii.gz"], "the file is empty", None),
    ("PNG image", ["info", "{bad}/x.png"], "unsupported file type", None),
    ("4-D volume", ["segment", "{bad}/4d.nii.gz", *BOX, "-o", "{out}/o.nii.gz"], "is 4-D", None),
    ("2-D image", ["segment", "{bad}/2d.nii.gz", *BOX, "-o", "{out}/o.nii.gz"], "is 2-D", None),
    ("RGB image", ["segment", "{bad}/rgb.tif", *BOX, "-o", "{out}/o.nii.gz"], "RGB(A) image", None),
    ("huge volume", ["info", "{bad}/huge.nii"], "GiB is free: crop or downsample it", None),
    (
        "4-D NRRD",
        ["segment", "{nrrd}/four_d.nrrd", *BOX, "-o", "{out}/o.nii.gz"],
        "four_d.nrrd is 4-D",
        None,
    ),
    ("vector NRRD", ["info", "{nrrd}/vector.nrrd"], "is a vector image", None),
    (
        "unknown NRRD encoding",
        ["info", "{nrrd}/zstd.nrrd"],
        "unsupported NRRD encoding 'zstd'",
        None,
    ),
    (
        "detached NRRD header without its data",
        ["info", "{nrrd}/orphan.nhdr"],
        "its data file orphan.raw is missing",
        None,
    ),
    (
        "corrupt gzip NRRD",
        ["segment", "{nrrd}/corrupt.nrrd", *BOX, "-o", "{out}/o.nii.gz"],
        "corrupt.nrrd: the file is truncated or corrupt",
        None,
    ),
    (
        "multi-layer Slicer segmentation",
        ["info", "{nrrd}/layered.seg.nrrd"],
        "holds 2 segmentation layers whose segments overlap",
        None,
    ),
    (
        "all-NaN volume",
        ["segment", "{bad}/nan.nii.gz", *BOX, "-o", "{out}/o.nii.gz"],
        "all voxels are NaN or infinite",
        None,
    ),
    (
        "constant volume",
        [
            "label",
            "{bad}/const.nii.gz",
            "--text",
            "liver",
            "--box",
            "liver:15,40,40,60,60",
            "-o",
            "{out}/o.nii.gz",
        ],
        "every voxel is 7",
        None,
    ),
    (
        "click outside the volume",
        ["segment", CT, "--point", "15,500,40", "--model", "phantom_sam", "-o", "{out}/o.nii.gz"],
        "lies outside the volume",
        None,
    ),
    (
        "box outside the volume",
        ["segment", CT, "--box", "50,40,40,60,60", "-o", "{out}/o.nii.gz"],
        "lies outside the volume (30 slices)",
        None,
    ),
    (
        "box with three numbers",
        ["segment", CT, "--box", "14,15,17", "-o", "{out}/o.nii.gz"],
        "--box '14,15,17' must be 5 comma-separated numbers",
        None,
    ),
    (
        "fractional point",
        ["segment", CT, "--point", "10.5,51,35", "-o", "{out}/o.nii.gz"],
        "10.5 is not a whole voxel index; give 10 or 11",
        None,
    ),
    (
        "points for a box-only model",
        ["segment", CT, "--point", "15,50,40", "-o", "{out}/o.nii.gz"],
        "box-prompted model",
        None,
    ),
    (
        "slice range outside the volume",
        ["segment", CT, *CLICK, "--propagate", "--slice-range", "5,99", "-o", "{out}/o.nii.gz"],
        "the volume has 30 slices",
        None,
    ),
    (
        "memory size above SAM2's 6",
        ["segment", CT, *CLICK, "--memory-size", "9", "-o", "{out}/o.nii.gz"],
        "memory size must be 1 to 6",
        None,
    ),
    (
        "ranked memory with SAM v1",
        ["segment", CT, *CLICK, "--propagate", "--memory", "ranked", "-o", "{out}/o.nii.gz"],
        "ranked memory bank is SAM2's",
        None,
    ),
    (
        "empty text",
        ["label", CT, "--text", " , ", "-o", "{out}/o.nii.gz"],
        "type at least one target",
        None,
    ),
    (
        "misspelt organ",
        ["label", CT, "--text", "livr", "-o", "{out}/o.nii.gz"],
        "unknown organ 'livr': did you mean liver?",
        None,
    ),
    (
        "organ with two sides",
        ["label", CT, "--text", "kidney", "-o", "{out}/o.nii.gz"],
        "'kidney' names 2 organs: left kidney, right kidney",
        None,
    ),
    (
        "duplicate organs",
        ["label", CT, "--text", "liver, liver", "-o", "{out}/o.nii.gz"],
        "names the same target",
        None,
    ),
    (
        "unknown model",
        ["segment", CT, *BOX, "--model", "sam9", "-o", "{out}/o.nii.gz"],
        "unknown model 'sam9'",
        None,
    ),
    (
        "model not downloaded",
        ["segment", CT, *BOX, "--model", "sam_vit_b", "-o", "{out}/o.nii.gz"],
        "sam_vit_b is not downloaded yet",
        None,
    ),
    (
        "text file as checkpoint",
        [
            "segment",
            CT,
            *BOX,
            "--model",
            "sam_vit_b",
            "--checkpoint",
            "{bad}/notes.pth",
            "-o",
            "{out}/o.nii.gz",
        ],
        "is not a checkpoint: it is a text file",
        None,
    ),
    (
        "damaged checkpoint",
        [
            "segment",
            CT,
            *BOX,
            "--model",
            "sam_vit_b",
            "--checkpoint",
            "{bad}/cut.pth",
            "-o",
            "{out}/o.nii.gz",
        ],
        "is truncated or corrupt",
        None,
    ),
    (
        "bf16 on the PyTorch runtime",
        ["segment", CT, *BOX, "--runtime", "torch", "--precision", "bf16", "-o", "{out}/o.nii.gz"],
        "precision bf16 needs the OpenVINO runtime",
        None,
    ),
    (
        "CUDA asked for, none present",
        ["segment", CT, *BOX, "--device", "cuda", "-o", "{out}/o.nii.gz"],
        "no CUDA GPU is available",
        None,
    ),
    (
        "no network",
        ["models", "download", "sam_vit_b", "--accept-license"],
        "no network",
        _no_network,
    ),
    (
        "no network, CLIP",
        ["models", "download", "clip_vit_b_16", "--accept-license"],
        "pass a local file with --clip-checkpoint FILE",
        _no_network,
    ),
    (
        "output folder not writable",
        ["segment", CT, *BOX, "-o", "/proc/x.nii.gz"],
        "cannot write /proc/x.nii.gz: files cannot be created in /proc",
        None,
    ),
    (
        "output is the input image",
        ["segment", CT, *BOX, "-o", CT],
        "writing there would replace it",
        None,
    ),
    (
        "label output suffix",
        ["segment", CT, *BOX, "-o", "{out}/o.png"],
        "cannot write labels as .png",
        None,
    ),
    (
        "missing output folder",
        ["segment", CT, *BOX, "-o", "{out}/nodir/o.nii.gz"],
        "the folder {out}/nodir does not exist",
        None,
    ),
    (
        "full disk on export",
        ["segment", CT, *CLICK, "-o", "{out}/o.nii.gz"],
        "the disk is full; no file was written",
        _disk_full_at_the_names,
    ),
    (
        "export-seg source missing",
        ["export-seg", ORGANS, "--source", "{out}/nodir", "-o", "{out}/o.dcm"],
        "nodir: no such file or folder",
        None,
    ),
    (
        "export-seg source not DICOM",
        ["export-seg", ORGANS, "--source", CT, "-o", "{out}/o.dcm"],
        "DICOM series",
        None,
    ),
    (
        "evaluate on other grids",
        ["evaluate", ORGANS, NUCLEI_LABELS],
        "evaluation never resamples",
        None,
    ),
    (
        "an image given as the prediction",
        ["evaluate", CT, ORGANS],
        "negative values (down to -1100); is it the image?",
        None,
    ),
    (
        "evaluate unknown label",
        ["evaluate", ORGANS, ORGANS, "--labels", "foo"],
        "unknown label 'foo'",
        None,
    ),
    (
        "batch with a model not downloaded",
        ["batch", CT, "--text", "liver", "--model", "sam_vit_b", "-o", "{out}/batch"],
        "sam_vit_b is not downloaded yet",
        None,
    ),
    (
        "view a missing file without a display",
        ["view", "{out}/missing.nii.gz"],
        "missing.nii.gz: no such file",
        _no_display,
    ),
]


@pytest.mark.parametrize("args, words, setup", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_in_one_line(
    args, words, setup, bad_files, bad_nrrds, tmp_path, capsys, monkeypatch, isolated_model_cache
):
    out = tmp_path / "out"
    out.mkdir()
    if setup is not None:
        setup(monkeypatch)
    argv = [a.format(bad=bad_files, nrrd=bad_nrrds, out=out) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = err.splitlines()  # the refusal comes alone: no warning that led to it
    assert len(errors) == 1 and errors[0].startswith("napari-textseg: error: "), err
    assert words.format(out=out) in errors[0]
    assert "Traceback" not in err
    assert not any(out.iterdir())  # nothing was written


def test_an_older_output_survives_a_refused_run(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o.nii.gz"
    assert main(["segment", CT, *CLICK, "-o", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    _disk_full_at_the_names(monkeypatch)
    assert (
        main(["segment", CT, "--point", "14,50,40", "--model", "phantom_sam", "-o", str(out)]) == 2
    )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_nan_voxels_are_one_warning_line_not_a_python_warning(bad_files, tmp_path, capsys):
    partly = tmp_path / "partly_nan.nii.gz"
    ct = nib.load(CT)
    data = np.asarray(ct.dataobj).astype(np.float32)
    data[0, 0, :3] = np.nan
    nib.save(nib.Nifti1Image(data, ct.affine), partly)
    assert main(["info", str(partly)]) == 0
    err = capsys.readouterr().err
    assert (
        err == "napari-textseg: warning: partly_nan.nii.gz: 3 voxels are NaN; they are shown empty "
        "and fed "
        "to the models as 0\n"
    )


def test_every_case_is_in_the_docs_table():
    table = (Path(__file__).parents[1] / "docs" / "refusals.md").read_text()
    missing = [
        case for case, _, words, _ in CASES if case not in table or words.split("{")[0] not in table
    ]
    assert not missing, f"docs/refusals.md lacks {missing}"
    assert json.dumps(len(CASES)) in table  # the count the page gives
