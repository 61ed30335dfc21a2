"""DICOM-SEG export: the organs of the real CT, drawn on its DICOM series, read back with
highdicom."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest

from conftest import data_file
from dicom_series import write_ct_series
from napari_textseg.core.errors import InputError
from napari_textseg.core.io import read_volume
from napari_textseg.core.io.dicom_seg import write_dicom_seg


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ct_series")
    write_ct_series(data_file("abdomen_ct.nii.gz"), folder)
    return read_volume(folder)


def test_segments_line_up_with_their_source_slices(series, tmp_path):
    organs = read_volume(data_file("abdomen_ct_organs.nii.gz"))
    assert organs.data.shape == series.data.shape
    keep = {v: n for v, n in organs.label_names.items() if n in ("liver", "spleen", "kidney_left")}
    labels = np.where(np.isin(organs.data, list(keep)), organs.data, 0)
    path = write_dicom_seg(tmp_path / "organs.dcm", labels, series.geometry, keep)

    seg = hd.seg.segread(path)
    described = {d.segment_number: d.segment_label for d in seg.SegmentSequence}
    assert sorted(described.values()) == ["kidney_left", "liver", "spleen"]
    assert {
        str(d.SegmentedPropertyTypeCodeSequence[0].CodeMeaning) for d in seg.SegmentSequence
    } >= {"Liver", "Spleen"}
    uids = series.geometry.extra["SOPInstanceUIDs"]
    by_name = {n: v for v, n in keep.items()}
    # Rebuild each segment in display order from the SEG's frames, slice by source slice.
    source = np.zeros(series.geometry.shape, dtype=np.uint8)  # (x, y, z) source order
    for number, name in described.items():
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids,
            segment_numbers=[number],
            ignore_spatial_locations=True,
            assert_missing_frames_are_empty=True,
        )
        source[np.transpose(pixels[..., 0], (2, 1, 0)) > 0] = by_name[name]
    assert np.array_equal(series.geometry.to_display(source), labels)


def test_non_dicom_sources_and_empty_maps_are_refused(series, tmp_path):
    organs = read_volume(data_file("abdomen_ct_organs.nii.gz"))
    with pytest.raises(InputError, match="read from a DICOM series"):
        write_dicom_seg(tmp_path / "x.dcm", organs.data, organs.geometry, organs.label_names)
    with pytest.raises(InputError, match="empty"):
        write_dicom_seg(tmp_path / "x.dcm", np.zeros(series.data.shape, np.uint8), series.geometry)
    assert not (tmp_path / "x.dcm").exists()


def test_export_seg_command_and_napari_writer(series, tmp_path, capsys):
    from napari_textseg._napari.layers import volume_to_layer_data
    from napari_textseg._napari.writer import write_labels_dicom_seg
    from napari_textseg.cli import main
    from napari_textseg.core.io import write_labels

    organs = read_volume(data_file("abdomen_ct_organs.nii.gz"))
    on_series = tmp_path / "organs.nii.gz"
    write_labels(on_series, organs.data, geometry=series.geometry, label_names=organs.label_names)
    out = tmp_path / "cli.dcm"
    assert (
        main(["export-seg", str(on_series), "--source", series.geometry.path, "-o", str(out)]) == 0
    )
    assert len(hd.seg.segread(out).SegmentSequence) == len([v for v in np.unique(organs.data) if v])
    # Labels drawn in napari on the opened series carry its geometry in their metadata.
    _, image_kwargs, _ = volume_to_layer_data(series)
    attributes = {
        "metadata": image_kwargs["metadata"],
        "features": {"index": [0, 5], "name": ["bg", "liver"]},
    }
    liver = np.where(organs.data == 5, 5, 0).astype(np.uint8)
    (written,) = write_labels_dicom_seg(str(tmp_path / "napari.dcm"), liver, attributes)
    assert [d.SegmentLabel for d in hd.seg.segread(written).SegmentSequence] == ["liver"]
    assert (
        main(
            [
                "export-seg",
                str(on_series),
                "--source",
                str(data_file("abdomen_ct.nii.gz")),
                "-o",
                str(tmp_path / "bad.dcm"),
            ]
        )
        == 2
    )
    assert "DICOM series" in capsys.readouterr().err


def _liver_on(series) -> np.ndarray:
    organs = read_volume(data_file("abdomen_ct_organs.nii.gz"))
    return np.where(organs.data == 5, 1, 0).astype(np.uint8)


def test_empty_sop_uids_fall_back_to_the_file_meta(tmp_path):
    """Anonymised exports empty the datasets' SOP UIDs; the file meta still holds them."""
    folder = tmp_path / "anon"
    write_ct_series(
        data_file("abdomen_ct.nii.gz"), folder, empty_uids=("SOPClassUID", "SOPInstanceUID")
    )
    series = read_volume(folder)
    uids = series.geometry.extra["SOPInstanceUIDs"]
    assert all(uids) and len(set(uids)) == len(uids)
    liver = _liver_on(series)
    seg = hd.seg.segread(
        write_dicom_seg(tmp_path / "liver.dcm", liver, series.geometry, {1: "liver"})
    )
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids,
        segment_numbers=[1],
        ignore_spatial_locations=True,
        assert_missing_frames_are_empty=True,
    )
    assert np.array_equal(
        series.geometry.to_display(np.transpose(pixels[..., 0], (2, 1, 0))), liver
    )


def test_a_series_with_every_uid_empty_is_refused_in_one_line(tmp_path, capsys):
    from napari_textseg.cli import main
    from napari_textseg.core.io import write_labels

    folder = tmp_path / "anon"
    write_ct_series(
        data_file("abdomen_ct.nii.gz"),
        folder,
        empty_uids=("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"),
    )
    series = read_volume(folder)
    labels = tmp_path / "liver.nii.gz"
    write_labels(labels, _liver_on(series), geometry=series.geometry, label_names={1: "liver"})
    out = tmp_path / "liver.dcm"
    assert main(["export-seg", str(labels), "--source", str(folder), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "empty StudyInstanceUID" in err and "export NIfTI" in err
    assert not out.exists()


@pytest.mark.viewer
def test_saving_labels_drawn_on_a_nifti_as_dicom_seg_gives_the_plugin_reason(
    make_napari_viewer_proxy, tmp_path
):
    """Issue 27: napari answered "No data written! A plugin could not be found ..." instead."""
    from napari_textseg.core.errors import WriteError

    viewer = make_napari_viewer_proxy()
    (image,) = viewer.open(str(data_file("abdomen_ct.nii.gz")), plugin="napari-textseg")
    viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="organs", scale=image.scale)
    with pytest.raises(
        WriteError,
        match="cannot save organs as .*x.dcm: DICOM-SEG needs labels made on an "
        "image opened from a DICOM series folder",
    ):
        viewer.layers.save(str(tmp_path / "x.dcm"), selected=True)
    assert not list(tmp_path.iterdir())
