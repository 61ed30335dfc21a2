"""TIFF stacks: voxel size from ImageJ/OME metadata, channels, and Fiji-compatible export."""

import numpy as np
import pytest
import tifffile

from napari_textseg.core.errors import ReadError
from napari_textseg.core.io import read_volume, write_labels


def test_nuclei_stack_reads_as_zyx(nuclei_path):
    nuclei = read_volume(nuclei_path)
    assert nuclei.data.shape == (31, 61, 57)
    assert nuclei.modality == "microscopy"
    assert nuclei.spacing == (1.0, 1.0, 1.0)
    assert nuclei.geometry.extra["voxel_size_stored"] is False
    assert not nuclei.is_labels


def test_imagej_voxel_size(nuclei_path, tmp_path):
    data = tifffile.imread(nuclei_path)
    out = tmp_path / "ij.tif"
    tifffile.imwrite(
        out,
        data,
        imagej=True,
        resolution=(1 / 0.16, 1 / 0.16),
        metadata={"spacing": 0.5, "unit": "micron", "axes": "ZYX"},
    )
    volume = read_volume(out)
    assert volume.spacing == pytest.approx((0.5, 0.16, 0.16))
    assert volume.geometry.unit == "um"


def test_ome_voxel_size_with_units(nuclei_path, tmp_path):
    data = tifffile.imread(nuclei_path)
    out = tmp_path / "stack.ome.tif"
    tifffile.imwrite(
        out,
        data,
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 200.0,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeY": 200.0,
            "PhysicalSizeYUnit": "nm",
            "PhysicalSizeZ": 1.0,
            "PhysicalSizeZUnit": "µm",
        },
    )
    assert read_volume(out).spacing == pytest.approx((1.0, 0.2, 0.2))


@pytest.mark.parametrize("axes, flavour", [("ZCYX", "imagej"), ("CZYX", "ome")])
def test_channel_axis_is_not_mistaken_for_z(nuclei_path, tmp_path, axes, flavour):
    zyx = tifffile.imread(nuclei_path)
    two = np.stack([zyx, zyx // 2], axis=axes.index("C"))
    out = tmp_path / "channels.tif"
    tifffile.imwrite(out, two, metadata={"axes": axes}, **{flavour: True})
    volume = read_volume(out)
    assert volume.channel_axis == 0
    assert volume.data.shape == (2, 31, 61, 57)
    np.testing.assert_array_equal(volume.data[1], zyx // 2)
    assert volume.spatial_shape == (31, 61, 57)


def test_rgb_2d_and_time_series_are_refused(tmp_path):
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((4, 16, 16, 3), np.uint8), photometric="rgb")
    with pytest.raises(ReadError, match="RGB"):
        read_volume(tmp_path / "rgb.tif")
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((16, 16), np.uint16))
    with pytest.raises(ReadError, match="2-D image.*needs a 3-D stack"):
        read_volume(tmp_path / "flat.tif")
    tifffile.imwrite(
        tmp_path / "movie.tif",
        np.zeros((3, 4, 16, 16), np.uint16),
        imagej=True,
        metadata={"axes": "TZYX"},
    )
    with pytest.raises(ReadError, match="time series"):
        read_volume(tmp_path / "movie.tif")


def test_non_image_named_tif(tmp_path):
    fake = tmp_path / "notes.tif"
    fake.write_text("meeting notes, not an image")
    with pytest.raises(ReadError, match="notes.tif: not a readable TIFF"):
        read_volume(fake)


def test_label_export_is_a_compressed_imagej_stack_with_voxel_size(nuclei_path, tmp_path):
    labels = read_volume(nuclei_path.with_name("nuclei_3d_labels.tif"))
    out = tmp_path / "nuclei_labels.tif"
    write_labels(out, labels.data, geometry=labels.geometry, scale=(0.5, 0.16, 0.16))
    with tifffile.TiffFile(out) as tif:
        assert tif.is_imagej
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.5)
        assert tif.imagej_metadata["unit"] == "micron"
        assert tif.imagej_metadata["images"] == 31  # a 31-slice stack, not 31 separate images
        assert tif.pages.first.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert tif.series[0].axes == "ZYX"
        np.testing.assert_array_equal(tif.asarray(), labels.data)
    assert read_volume(out).spacing == pytest.approx((0.5, 0.16, 0.16))


def test_wide_labels_fall_back_to_ome_tiff(tmp_path):
    labels = np.zeros((3, 8, 8), np.int64)
    labels[1, 2, 2] = 100_000
    out = tmp_path / "wide.tif"
    write_labels(out, labels, scale=(2.0, 0.5, 0.5), geometry=None)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_ome and tif.pages.first.dtype == np.uint32
    back = read_volume(out)
    np.testing.assert_array_equal(back.data, labels)
    assert back.spacing == pytest.approx((2.0, 0.5, 0.5))


def test_microscopy_labels_survive_a_trip_through_nifti(nuclei_path, tmp_path):
    labels = read_volume(nuclei_path.with_name("nuclei_3d_labels.tif"))
    write_labels(
        tmp_path / "n.nii.gz", labels.data, geometry=labels.geometry, scale=(0.5, 0.2, 0.2)
    )
    back = read_volume(tmp_path / "n.nii.gz")
    assert back.modality == "microscopy" and back.geometry.unit == "um"
    np.testing.assert_array_equal(back.data, labels.data)
    assert back.spacing == pytest.approx((0.5, 0.2, 0.2))
    # Its geometry is exact enough to be written again, onto the same grid.
    write_labels(tmp_path / "again.nii.gz", back.data, geometry=back.geometry, scale=back.spacing)
    np.testing.assert_array_equal(read_volume(tmp_path / "again.nii.gz").data, labels.data)
