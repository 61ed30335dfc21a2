"""NIfTI reading (display orientation, geometry, modality) and exact label round trips."""

import gzip
import json

import nibabel as nib
import numpy as np
import pytest

from conftest import DATA_FILES, data_file
from napari_textseg.core.errors import ReadError
from napari_textseg.core.io import read_volume, write_labels
from napari_textseg.core.volume import affine_from_display


def test_ct_is_shown_axial_with_spacing_and_lps_origin(ct_path):
    ct = read_volume(ct_path)
    src = nib.load(ct_path)
    assert src.shape == (122, 101, 30)
    assert ct.data.shape == (30, 101, 122)  # (z, y, x): axial slices on the slider
    assert ct.spacing == (3.0, 3.0, 3.0)
    assert ct.modality == "CT" and ct.orientation == "RAS"
    # translate is the LPS position of display voxel (0, 0, 0): the source voxel at the
    # patient's right-anterior corner of the first slice.
    corner_ras = src.affine @ np.array([121, 100, 0, 1])
    np.testing.assert_allclose(ct.origin, [corner_ras[2], -corner_ras[1], -corner_ras[0]])


def test_radiological_display_puts_the_liver_on_the_screen_left(organs_path):
    organs = read_volume(organs_path)
    liver = organs.data == 5  # TotalSegmentator "liver"
    spleen = organs.data == 1
    # Screen left (small x) is the patient's right, where the liver is.
    assert np.argwhere(liver)[:, 2].mean() < np.argwhere(spleen)[:, 2].mean()
    # Anterior is at the top (small y): the aorta (52) lies behind the liver's front edge.
    assert np.argwhere(liver)[:, 1].min() < np.argwhere(organs.data == 52)[:, 1].mean()


def test_lps_mr_and_ras_ct_share_the_display_convention(mr_path):
    mr = read_volume(mr_path)
    assert mr.orientation == "LPS"
    assert mr.modality == "MR"
    assert mr.data.shape == (20, 91, 117)
    src = nib.load(mr_path)
    # LPS source: display axes are the source axes, so no flip.
    np.testing.assert_array_equal(mr.data, np.transpose(np.asanyarray(src.dataobj), (2, 1, 0)))
    corner_ras = src.affine @ np.array([0, 0, 0, 1])
    np.testing.assert_allclose(mr.origin, [corner_ras[2], -corner_ras[1], -corner_ras[0]])


def test_display_world_coordinates_are_lps_mm(ct_path):
    ct = read_volume(ct_path)
    src = nib.load(ct_path)
    z, y, x = 7, 40, 33
    world_lps = np.array(ct.origin) + np.array([z, y, x]) * np.array(ct.spacing)
    source_index = ct.geometry.from_display(np.arange(ct.data.size).reshape(ct.data.shape))
    flat = int(np.arange(ct.data.size).reshape(ct.data.shape)[z, y, x])
    i, j, k = np.argwhere(source_index == flat)[0]
    ras = src.affine @ np.array([i, j, k, 1])
    np.testing.assert_allclose(world_lps, [ras[2], -ras[1], -ras[0]])


def test_organ_map_opens_as_named_labels(organs_path):
    organs = read_volume(organs_path)
    assert organs.is_labels
    assert organs.label_names[5] == "liver" and organs.label_names[1] == "spleen"
    assert int((organs.data == 5).sum()) == 38634  # voxel count from the data README


def _labels_for(volume):
    """A label map on a volume's grid: the file itself for label maps, else intensity bins."""
    if volume.is_labels:
        return volume.data
    data = np.nan_to_num(volume.data.astype(np.float64))
    return np.digitize(data, np.percentile(data, [25, 50, 75])).astype(np.int32)


@pytest.mark.parametrize("name", DATA_FILES)
@pytest.mark.parametrize("suffix", [".nii.gz", ".tif"])
def test_round_trip_is_exact_on_every_shared_file(name, suffix, tmp_path):
    source = read_volume(data_file(name))
    labels = _labels_for(source)
    out = tmp_path / f"labels{suffix}"
    written = write_labels(
        out,
        labels,
        geometry=source.geometry,
        scale=source.spacing,
        translate=source.origin,
        label_names={1: "one"},
    )
    assert written == [str(out), str(tmp_path / "labels.labels.json")]
    back = read_volume(out)
    np.testing.assert_array_equal(back.data, labels)
    assert back.spacing == pytest.approx(source.spacing)
    if suffix == ".nii.gz" and source.geometry.affine is not None:
        src_img, out_img = nib.load(data_file(name)), nib.load(out)
        np.testing.assert_array_equal(out_img.affine, src_img.affine)
        assert out_img.shape == src_img.shape[:3]
        assert int(out_img.header["qform_code"]) == int(src_img.header["qform_code"])
        assert int(out_img.header["sform_code"]) == int(src_img.header["sform_code"])
        np.testing.assert_array_equal(
            np.asanyarray(out_img.dataobj), source.geometry.from_display(labels)
        )
        assert nib.aff2axcodes(out_img.affine) == nib.aff2axcodes(src_img.affine)


def test_smallest_dtype_is_used(organs_path, tmp_path):
    organs = read_volume(organs_path)
    for values, dtype in [(200, np.uint8), (300, np.uint16), (70_000, np.uint32)]:
        labels = np.zeros(organs.data.shape, dtype=np.int64)
        labels[0, 0, 0] = values
        out = tmp_path / f"l{values}.nii.gz"
        write_labels(out, labels, geometry=organs.geometry)
        assert nib.load(out).get_data_dtype() == dtype


def test_labels_without_source_metadata_use_scale_and_translate(ct_path, tmp_path):
    """A Labels layer made in napari carries only scale/translate: the grid must still match."""
    ct = read_volume(ct_path)
    labels = np.zeros(ct.data.shape, np.uint8)
    labels[10, 20:30, 40:60] = 1
    out = tmp_path / "new.nii.gz"
    write_labels(out, labels, scale=ct.spacing, translate=ct.origin)
    img = nib.load(out)
    np.testing.assert_allclose(img.affine, ct.geometry.display_affine_ras(), atol=1e-5)
    back = read_volume(out)
    np.testing.assert_array_equal(back.data, labels)
    np.testing.assert_allclose(back.origin, ct.origin, atol=1e-4)
    np.testing.assert_allclose(affine_from_display(ct.spacing, ct.origin), img.affine, atol=1e-5)


def test_sidecar_holds_names_and_colours(organs_path, tmp_path):
    organs = read_volume(organs_path)
    out = tmp_path / "organs.nii.gz"
    colors = {5: (1.0, 0.0, 0.0, 1.0)}
    write_labels(
        out, organs.data, geometry=organs.geometry, label_names={5: "liver"}, label_colors=colors
    )
    side = json.loads((tmp_path / "organs.labels.json").read_text())
    assert side["labels"]["5"] == "liver"
    assert side["colors"]["5"] == "#ff0000ff"
    # Values present but unnamed still get an entry, so the file is self-describing.
    assert side["labels"]["1"] == "label 1"
    back = read_volume(out)
    assert back.label_names[5] == "liver" and back.label_colors[5] == (1.0, 0.0, 0.0, 1.0)


# --- bad input -------------------------------------------------------------------------


def test_truncated_nifti_is_a_clear_error(ct_path, tmp_path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(ct_path.read_bytes()[: len(ct_path.read_bytes()) // 2])
    with pytest.raises(ReadError, match=r"broken.nii.gz: .*(truncated|corrupt|not a readable)"):
        read_volume(broken)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.nii.gz"
    empty.write_bytes(b"")
    with pytest.raises(ReadError, match="empty"):
        read_volume(empty)
    with pytest.raises(ReadError, match="no such file"):
        read_volume(tmp_path / "missing.nii")


def test_garbage_named_nifti(tmp_path):
    bad = tmp_path / "text.nii.gz"
    bad.write_bytes(gzip.compress(b"this is not an image" * 50))
    with pytest.raises(ReadError, match="text.nii.gz"):
        read_volume(bad)


def test_2d_and_4d_nifti_are_refused_with_the_reason(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((8, 8), np.int16), np.eye(4)), tmp_path / "flat.nii.gz")
    with pytest.raises(ReadError, match="2-D.*needs a 3-D volume"):
        read_volume(tmp_path / "flat.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4, 5), np.int16), np.eye(4)), tmp_path / "fmri.nii.gz")
    with pytest.raises(ReadError, match="time series of 5 volumes.*split it"):
        read_volume(tmp_path / "fmri.nii.gz")


def test_trailing_singleton_axis_is_a_plain_volume(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((8, 7, 4, 1), np.int16), np.eye(4)), tmp_path / "v.nii.gz")
    assert read_volume(tmp_path / "v.nii.gz").data.shape == (4, 7, 8)


def test_nan_voxels_load_with_a_warning(ct_path, tmp_path):
    src = nib.load(ct_path)
    data = np.asanyarray(src.dataobj).astype(np.float32)
    data[0, 0, :5] = np.nan
    nib.save(nib.Nifti1Image(data, src.affine), tmp_path / "nan.nii.gz")
    with pytest.warns(UserWarning, match="5 voxel"):
        volume = read_volume(tmp_path / "nan.nii.gz")
    assert volume.nan_count == 5
    assert volume.modality == "CT"
