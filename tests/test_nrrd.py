"""NRRD, the format 3D Slicer writes: geometry equal to SimpleITK's on real files and on
re-oriented copies, label maps written back on the source grid, Slicer's .seg.nrrd with
named segments, and one line for every broken file."""

from __future__ import annotations

from pathlib import Path

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from conftest import data_file, shared_file
from napari_textseg.cli import main
from napari_textseg.core.errors import ReadError
from napari_textseg.core.io import read_volume, write_labels

SHIPPED = ["brain1_image.nrrd", "brain1_label.nrrd", "lung1_image.nrrd", "lung1_label.nrrd"]
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def assert_same_geometry_as_sitk(path: Path) -> None:
    """Origin, spacing and direction (LPS, as ITK gives them) within 1e-4, and the voxels."""
    ours = read_volume(path)
    theirs = sitk.ReadImage(str(path))
    lps = _LPS @ ours.geometry.affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    np.testing.assert_allclose(lps[:3, 3], theirs.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(spacing, theirs.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose((lps[:3, :3] / spacing).ravel(), theirs.GetDirection(), atol=1e-4)
    # The voxels, in source order: ITK's array is (z, y, x) of the file's own axes.
    source = ours.geometry.from_display(ours.data)
    np.testing.assert_array_equal(
        np.transpose(source, (2, 1, 0)), sitk.GetArrayViewFromImage(theirs)
    )


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_nrrds_have_simpleitks_geometry(name):
    assert_same_geometry_as_sitk(shared_file(name))


# (space, axis permutation, axis signs, encoding): re-oriented copies of brain1's label map.
REORIENTED = [
    ("right-anterior-superior", (0, 1, 2), (1, 1, 1), "gzip"),
    ("left-anterior-superior", (1, 0, 2), (-1, 1, 1), "raw"),
    ("left-posterior-superior", (2, 0, 1), (1, -1, -1), "gzip"),
    ("RAS", (1, 2, 0), (-1, -1, 1), "raw"),
    ("left-posterior-superior", (0, 1, 2), (1, 1, 1), "detached"),
]


@pytest.mark.parametrize("space, order, signs, encoding", REORIENTED)
def test_reoriented_copies_read_as_simpleitk_reads_them(tmp_path, space, order, signs, encoding):
    data, _ = nrrd.read(str(shared_file("brain1_label.nrrd")))
    spacing = np.array([0.78125, 0.9, 6.5])
    directions = np.eye(3)[list(order)] * (spacing * np.array(signs))[:, None]  # one row per axis
    header = {
        "space": space,
        "space directions": directions,
        "space origin": np.array([-12.5, 30.25, -78.0]),
        "kinds": ["domain"] * 3,
        "encoding": "raw" if encoding == "detached" else encoding,
    }
    path = tmp_path / ("copy.nhdr" if encoding == "detached" else "copy.nrrd")
    nrrd.write(str(path), data, header, detached_header=encoding == "detached")
    assert_same_geometry_as_sitk(path)
    # Written back through our export, it is the same file for ITK: grid and voxels.
    volume = read_volume(path)
    out = tmp_path / "back.nrrd"
    write_labels(out, volume.data, geometry=volume.geometry)
    back, source = sitk.ReadImage(str(out)), sitk.ReadImage(str(path))
    np.testing.assert_allclose(back.GetOrigin(), source.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(back.GetDirection(), source.GetDirection(), atol=1e-9)
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(source)
    )


def test_tumour_labels_overlay_the_image_in_world_space():
    image, label = (
        read_volume(shared_file("brain1_image.nrrd")),
        read_volume(shared_file("brain1_label.nrrd")),
    )
    assert image.modality == "MR" and label.is_labels and not image.is_labels
    assert image.spacing == pytest.approx((6.5, 0.78125, 0.78125))
    assert label.origin == pytest.approx(image.origin) and label.data.shape == image.data.shape == (
        25,
        256,
        256,
    )
    assert int((label.data > 0).sum()) == 4137


def test_seg_nrrd_keeps_names_colours_and_the_full_grid(tmp_path):
    organs = read_volume(data_file("abdomen_ct_organs.nii.gz"))
    out = tmp_path / "organs.seg.nrrd"
    [written] = write_labels(
        out,
        organs.data,
        geometry=organs.geometry,
        label_names=organs.label_names,
        label_colors={5: (0.8, 0.4, 0.2, 1.0)},
    )
    assert (
        written == str(out) and not (tmp_path / "organs.labels.json").exists()
    )  # the names are inside
    header = nrrd.read_header(str(out))  # the raw fields Slicer reads
    fields = {header[f"Segment{i}_LabelValue"]: i for i in range(100) if f"Segment{i}_ID" in header}
    liver = fields["5"]
    assert (
        header[f"Segment{liver}_Name"] == "liver"
        and header[f"Segment{liver}_Color"] == "0.8 0.4 0.2"
    )
    assert header[f"Segment{liver}_Layer"] == "0"
    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"
    assert (
        tuple(header["sizes"]) == organs.geometry.shape
    )  # the full source grid, not the segments' extent
    # Slicer's extent of a segment: its bounding box in voxels of the file.
    x0, x1, y0, y1, z0, z1 = (int(v) for v in header[f"Segment{liver}_Extent"].split())
    liver_xyz = np.argwhere(organs.geometry.from_display(organs.data) == 5)
    assert (x0, y0, z0) == tuple(liver_xyz.min(0)) and (x1, y1, z1) == tuple(liver_xyz.max(0))
    back = read_volume(out)
    assert (
        back.is_labels
        and back.label_names[5] == "liver"
        and back.label_colors[5] == (0.8, 0.4, 0.2, 1.0)
    )
    np.testing.assert_array_equal(back.data, organs.data)
    np.testing.assert_allclose(back.geometry.affine, organs.geometry.affine, atol=1e-9)


def test_a_cropped_seg_nrrd_from_slicer_opens_named_where_it_lies(tmp_path):
    """Slicer crops a segmentation to its segments' extent by default: the file's origin
    moves with the crop, and the reference offset says where it sat."""
    label = read_volume(shared_file("brain1_label.nrrd"))
    data, header = nrrd.read(str(shared_file("brain1_label.nrrd")))
    crop = (slice(150, 220), slice(80, 160), slice(10, 19))
    offset = np.array([s.start for s in crop])
    header |= {
        "space origin": header["space origin"] + offset @ header["space directions"],
        "Segmentation_ReferenceImageExtentOffset": " ".join(map(str, offset)),
        "Segment0_ID": "Segment_1",
        "Segment0_Name": "tumour",
        "Segment0_Color": "0.9 0.1 0.1",
        "Segment0_LabelValue": "1",
        "Segment0_Layer": "0",
    }
    path = tmp_path / "tumour.seg.nrrd"
    nrrd.write(str(path), data[crop].astype(np.uint8), header)
    cropped = read_volume(path)
    assert cropped.label_names == {1: "tumour"} and cropped.data.shape == (9, 80, 70)
    assert int((cropped.data > 0).sum()) == int(
        (label.data > 0).sum()
    )  # the whole tumour inside the crop
    # Every tumour voxel of the crop lies, in world (LPS mm), on a tumour voxel of the full map.
    world = np.argwhere(cropped.data > 0) * cropped.spacing + cropped.origin
    index = np.rint((world - label.origin) / label.spacing).astype(int)
    assert label.data[tuple(index.T)].all()


def test_the_command_line_reads_nrrd_and_writes_seg_nrrd(tmp_path):
    tumour = read_volume(shared_file("brain1_label.nrrd")).data > 0
    z = int(tumour.sum((1, 2)).argmax())
    ys, xs = np.nonzero(tumour[z])
    out = tmp_path / "tumour.seg.nrrd"
    assert (
        main(
            [
                "segment",
                str(shared_file("brain1_image.nrrd")),
                "--box",
                f"{z},{ys.min()},{xs.min()},{ys.max()},{xs.max()}",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    back = read_volume(out)
    assert back.is_labels and back.data.shape == (25, 256, 256) and back.data[z].any()
    assert back.label_names and set(back.label_names) == {1}
    assert sitk.ReadImage(str(out)).GetOrigin() == pytest.approx(
        sitk.ReadImage(str(shared_file("brain1_image.nrrd"))).GetOrigin()
    )


@pytest.mark.parametrize(
    "name, words",
    [
        ("four_d.nrrd", "is 4-D"),
        ("vector.nrrd", "is a vector image"),
        ("zstd.nrrd", "unsupported NRRD encoding 'zstd'"),
        ("orphan.nhdr", "its data file orphan.raw is missing"),
        ("corrupt.nrrd", "truncated or corrupt"),
        ("layered.seg.nrrd", "holds 2 segmentation layers whose segments overlap"),
    ],
)
def test_a_broken_nrrd_is_one_line(bad_nrrds, name, words):
    with pytest.raises(ReadError) as err:
        read_volume(bad_nrrds / name)
    assert words in str(err.value) and name in str(err.value) and "\n" not in str(err.value)


def test_header_float_noise_does_not_cost_napari_a_slice():
    """Slicer writes 6.4999999999999982 for 6.5 mm; napari counted 24 slices of brain1's 25
    from the raw numbers, so the last slice could not be reached."""
    from napari.components import ViewerModel

    image = read_volume(shared_file("brain1_image.nrrd"))
    viewer = ViewerModel()
    viewer.add_image(image.data, scale=image.spacing, translate=image.origin)
    assert viewer.dims.nsteps[0] == 25
    assert image.spacing == (6.5, 0.78125, 0.78125) and image.origin == (
        -78.0,
        -99.609375,
        -99.609375,
    )


def test_a_big_endian_nrrd_reads_in_native_byte_order(tmp_path):
    data = np.arange(3 * 4 * 5, dtype=">i2").reshape(3, 4, 5)
    path = tmp_path / "big.nrrd"
    nrrd.write(
        str(path),
        data,
        {
            "endian": "big",
            "encoding": "raw",
            "space": "left-posterior-superior",
            "space directions": np.eye(3),
            "space origin": np.zeros(3),
        },
    )
    volume = read_volume(path)
    assert volume.data.dtype.isnative and volume.data.dtype == np.int16
    np.testing.assert_array_equal(volume.geometry.from_display(volume.data), data)
    assert_same_geometry_as_sitk(path)


def test_microscopy_labels_saved_as_nrrd_read_back_as_they_were(tmp_path):
    nuclei = read_volume(data_file("nuclei_3d_labels.tif"))
    out = tmp_path / "nuclei.nrrd"
    write_labels(out, nuclei.data, geometry=nuclei.geometry, scale=nuclei.spacing)
    np.testing.assert_array_equal(read_volume(out).data, nuclei.data)  # not flipped in y or x
