"""DICOM series folders: a real CT written as DICOM reads back onto the same grid."""

import shutil

import numpy as np
import pytest

from dicom_series import write_ct_series
from napari_textseg.core.errors import ReadError
from napari_textseg.core.io import read_volume, write_labels


@pytest.fixture
def ct_series(ct_path, tmp_path):
    folder = tmp_path / "series"
    write_ct_series(ct_path, folder)
    return folder


def test_series_matches_the_nifti_it_came_from(ct_path, ct_series):
    from_nifti = read_volume(ct_path)
    from_dicom = read_volume(ct_series)
    assert from_dicom.modality == "CT"
    np.testing.assert_array_equal(from_dicom.data, from_nifti.data)
    np.testing.assert_allclose(from_dicom.spacing, from_nifti.spacing, atol=1e-6)
    np.testing.assert_allclose(from_dicom.origin, from_nifti.origin, atol=1e-4)
    # Slices are stored along the same voxel axes as the NIfTI: the affines agree.
    np.testing.assert_allclose(from_dicom.geometry.affine, from_nifti.geometry.affine, atol=1e-4)
    assert len(from_dicom.geometry.extra["SOPInstanceUIDs"]) == 30


def test_labels_from_a_series_export_onto_its_grid(ct_path, ct_series, tmp_path):
    import nibabel as nib

    series = read_volume(ct_series)
    labels = (series.data > 100).astype(np.uint8)
    out = tmp_path / "seg.nii.gz"
    write_labels(out, labels, geometry=series.geometry)
    # The NIfTI written from DICOM lines up with the original NIfTI in world space.
    seg = read_volume(out)
    np.testing.assert_array_equal(seg.data, labels)
    np.testing.assert_allclose(seg.origin, read_volume(ct_path).origin, atol=1e-4)
    np.testing.assert_allclose(nib.load(out).affine, nib.load(ct_path).affine, atol=1e-4)


def test_two_series_in_one_folder_is_refused(ct_path, ct_series, tmp_path):
    write_ct_series(ct_path, ct_series / "other", description="second")
    with pytest.raises(ReadError, match="holds 2 DICOM series.*own folder"):
        read_volume(ct_series)


def test_missing_slice_is_detected(ct_series):
    files = sorted(ct_series.iterdir())
    import pydicom

    # Remove a slice from the middle of the stack (by position, not by file order).
    positions = {
        f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in files
    }
    middle = sorted(files, key=positions.get)[15]
    middle.unlink()
    with pytest.raises(ReadError, match="irregular.*missing"):
        read_volume(ct_series)


def test_folder_without_dicom(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ReadError, match="no DICOM image slices"):
        read_volume(tmp_path)


def test_corrupt_slice_is_named(ct_series):
    victim = sorted(ct_series.iterdir())[3]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 4000])
    with pytest.raises(ReadError, match=victim.name):
        read_volume(ct_series)
    shutil.rmtree(ct_series)
