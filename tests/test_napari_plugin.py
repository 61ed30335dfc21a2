"""The plugin inside a real napari viewer: reader, sample data, writers and dock widgets.

These tests build a viewer and need a display: run them under ``xvfb-run``.
"""

import json

import nibabel as nib
import numpy as np
import pytest
import tifffile

from dicom_series import write_ct_series

pytestmark = pytest.mark.viewer


@pytest.fixture
def viewer(make_napari_viewer_proxy):
    return make_napari_viewer_proxy()


def test_ct_opens_with_physical_geometry_and_soft_tissue_window(viewer, ct_path):
    from napari_textseg._napari.layers import METADATA_KEY

    [layer] = viewer.open(str(ct_path), plugin="napari-textseg")
    assert layer.data.shape == (30, 101, 122)
    np.testing.assert_allclose(layer.scale, (3, 3, 3))
    np.testing.assert_allclose(layer.translate, (94.3017578125, -311.319, -185.0437), atol=1e-3)
    assert tuple(layer.contrast_limits) == (-160, 240)
    meta = layer.metadata[METADATA_KEY]
    assert meta["modality"] == "CT" and meta["geometry"].format == "nifti"
    # The slider steps through axial slices: the first axis is z.
    assert viewer.dims.nsteps[0] == 30


def test_dicom_folder_opens(viewer, ct_path, tmp_path):
    write_ct_series(ct_path, tmp_path / "series")
    [layer] = viewer.open(str(tmp_path / "series"), plugin="napari-textseg")
    assert layer.data.shape == (30, 101, 122)
    assert tuple(layer.contrast_limits) == (-160, 240)


def test_multichannel_tiff_opens_as_one_layer_per_channel(viewer, nuclei_path, tmp_path):
    zyx = tifffile.imread(nuclei_path)
    tifffile.imwrite(
        tmp_path / "two.tif", np.stack([zyx, zyx], axis=1), imagej=True, metadata={"axes": "ZCYX"}
    )
    layers = viewer.open(str(tmp_path / "two.tif"), plugin="napari-textseg")
    assert [la.data.shape for la in layers] == [(31, 61, 57)] * 2


def test_bad_file_gives_the_reason_not_a_traceback(viewer, tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3, 4), np.int16), np.eye(4)), tmp_path / "t.nii.gz")
    with pytest.raises(Exception, match="time series of 4 volumes"):
        viewer.open(str(tmp_path / "t.nii.gz"), plugin="napari-textseg")
    assert len(viewer.layers) == 0


def test_sample_ct_has_named_organs_shown_on_hover(viewer):
    viewer.open_sample("napari-textseg", "abdomen_ct")
    image, organs = viewer.layers
    assert image.name == "abdomen_ct" and organs.name == "abdomen_ct_organs"
    z, y, x = np.argwhere(organs.data == 5)[0]  # a liver voxel
    world = np.array(organs.data_to_world((z, y, x)))
    viewer.dims.set_point(0, world[0])  # show that axial slice
    status = organs.get_status(world, world=True)
    assert "liver" in str(status)


@pytest.mark.parametrize("sample, n_layers", [("abdomen_mr", 1), ("nuclei_3d", 2)])
def test_other_samples_open(viewer, sample, n_layers):
    viewer.open_sample("napari-textseg", sample)
    assert len(viewer.layers) == n_layers


def test_labels_layer_saves_onto_the_source_grid(viewer, tmp_path, organs_path):
    viewer.open_sample("napari-textseg", "abdomen_ct")
    organs = viewer.layers["abdomen_ct_organs"]
    organs.data[organs.data == 1] = 0  # an edit: remove the spleen
    out = tmp_path / "edited.nii.gz"
    organs.save(str(out), plugin="napari-textseg")
    img = nib.load(out)
    np.testing.assert_array_equal(img.affine, nib.load(organs_path).affine)
    source = np.asanyarray(nib.load(organs_path).dataobj)
    expected = np.where(source == 1, 0, source)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), expected)
    side = json.loads((tmp_path / "edited.labels.json").read_text())
    assert side["labels"]["5"] == "liver"
    liver_rgba = organs.colormap.map(np.array([5], organs.data.dtype))[0]
    assert side["colors"]["5"] == "#" + "".join(f"{round(c * 255):02x}" for c in liver_rgba)


def test_a_new_labels_layer_exports_with_the_image_geometry(viewer, ct_path, tmp_path):
    """Labels painted on a layer made with napari's own 'new labels' carry no metadata."""
    [image] = viewer.open(str(ct_path), plugin="napari-textseg")
    painted = viewer.add_labels(
        np.zeros(image.data.shape, np.int32), scale=image.scale, translate=image.translate
    )
    painted.data[12, 30:40, 50:70] = 3
    for suffix in (".nii.gz", ".tif"):
        out = tmp_path / f"painted{suffix}"
        painted.save(str(out), plugin="napari-textseg")
    [back] = viewer.open(str(tmp_path / "painted.nii.gz"), plugin="napari-textseg")
    np.testing.assert_array_equal(back.data, painted.data)
    np.testing.assert_allclose(back.translate, image.translate, atol=1e-4)
    np.testing.assert_allclose(back.scale, image.scale)
    [tif] = viewer.open(str(tmp_path / "painted.tif"), plugin="napari-textseg")
    np.testing.assert_allclose(tif.scale, image.scale)


def test_text_widget_explains_itself_before_a_model_is_loaded(viewer):
    from qtpy.QtWidgets import QLabel

    _, widget = viewer.window.add_plugin_dock_widget("napari-textseg", "Text labelling")
    assert "organ names" in widget.findChild(QLabel, "status").text()


def test_opening_the_widgets_after_the_canvas_exists_does_not_crash(tmp_path):
    """The user's path: napari is up (OpenGL canvas) before the plugin imports torch.

    On software OpenGL (Mesa llvmpipe), loading triton's LLVM after the canvas crashed
    the process; see napari_textseg/_napari/_triton.py.
    """
    import subprocess
    import sys

    script = tmp_path / "late_import.py"
    script.write_text(
        "import napari\n"
        "from qtpy.QtWidgets import QApplication\n"
        "viewer = napari.Viewer()\n"
        "viewer.open_sample('napari-textseg', 'abdomen_ct')\n"
        "for _ in range(5):\n"
        "    QApplication.processEvents()\n"
        "viewer.window.add_plugin_dock_widget('napari-textseg', 'Point prompts')\n"
        "import segment_anything, torchvision  # what loading a SAM model imports\n"
        "viewer.close()\n"
        "print('survived')\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr[-2000:]


def _open_as_the_gui_does(viewer, path, monkeypatch) -> list[str]:
    """Drop ``path`` on the canvas (File > Open takes the same road) and press OK in
    napari's reader dialog, whatever it preselects; returns the readers it offered."""
    from napari._qt.dialogs import qt_reader_dialog
    from qtpy.QtCore import QUrl

    offered = []

    def press_ok(dialog):
        offered.extend(button.text() for button in dialog.reader_btn_group.buttons())
        return dialog._get_plugin_choice(), False

    monkeypatch.setattr(qt_reader_dialog.QtReaderDialog, "get_user_choices", press_ok)
    viewer.window._qt_viewer._open_from_list_of_urls_data(
        [QUrl.fromLocalFile(str(path))], stack=False, choose_plugin=False
    )
    return offered


@pytest.mark.parametrize("name", ["abdomen_ct.nii.gz", "nuclei_3d.tif"])
def test_file_open_preselects_our_reader_over_napari_builtins(viewer, name, monkeypatch):
    """napari lists the readers sorted by display name and preselects the first; with
    "napari builtins" first, OK gave "OSError: Could not find a backend"."""
    from conftest import data_file

    offered = _open_as_the_gui_does(viewer, data_file(name), monkeypatch)
    assert offered[0] == "TextSeg 3D" and "napari builtins" in offered
    assert len(viewer.layers) >= 1 and viewer.layers[0].metadata.get("napari_textseg")


def test_a_dicom_folder_dropped_on_the_canvas_opens(viewer, ct_path, tmp_path, monkeypatch):
    """The series sits one folder down, as exports from PACS put it."""
    write_ct_series(ct_path, tmp_path / "export" / "series1")
    (tmp_path / "export" / "README.txt").write_text("exported")
    _open_as_the_gui_does(viewer, tmp_path / "export", monkeypatch)
    [layer] = viewer.layers
    assert layer.data.shape == (30, 101, 122)


def test_an_oblique_volume_warns_with_its_angle_and_new_labels_keep_the_rotation(
    viewer, ct_path, tmp_path, monkeypatch
):
    """Rotated 15° about z it showed up to 18.8 mm out of place without a word, and labels
    made with napari's New Labels exported axis-aligned."""
    import napari.utils.notifications as notifications

    from conftest import write_oblique_ct
    from napari_textseg._napari.prompts_controller import controller_for
    from napari_textseg._napari.writer import write_labels_nifti

    warned = []
    monkeypatch.setattr(notifications, "show_warning", warned.append)
    path = write_oblique_ct(ct_path, tmp_path)
    controller_for(viewer)  # a panel is open, as in every workflow of the plugin
    [image] = viewer.open(str(path), plugin="napari-textseg")
    assert (
        len(warned) == 1
        and "rotated 15.0°" in warned[0]
        and "mm from where a voxel is" in warned[0]
    )
    viewer.layers.selection.active = image
    viewer._new_labels()
    labels = viewer.layers[-1]
    labels.data[15, 50, 40] = 1
    [written] = write_labels_nifti(
        str(tmp_path / "drawn.nii.gz"),
        labels.data,
        {"metadata": labels.metadata, "scale": labels.scale, "translate": labels.translate},
    )
    np.testing.assert_allclose(nib.load(written).affine, nib.load(path).affine, atol=1e-5)


def test_the_phantom_sample_leaves_no_folder_behind(viewer):
    import tempfile
    from pathlib import Path

    def leftovers():
        return set(Path(tempfile.gettempdir()).glob("napari-textseg-phantom-*"))

    before = leftovers()
    viewer.open_sample("napari-textseg", "phantom_ct")
    assert len(viewer.layers) == 2 and viewer.layers[1].data.max() > 0
    assert leftovers() == before


def test_a_slicer_nrrd_opens_and_saves_as_a_named_seg_nrrd(viewer, tmp_path):
    """brain1 as 3D Slicer wrote it: the image and its tumour map open on one grid, and
    Save as .seg.nrrd gives Slicer a named segment on the full source grid."""
    import nrrd

    from conftest import shared_file

    [image] = viewer.open(str(shared_file("brain1_image.nrrd")), plugin="napari-textseg")
    [tumour] = viewer.open(str(shared_file("brain1_label.nrrd")), plugin="napari-textseg")
    assert tumour.__class__.__name__ == "Labels" and image.data.shape == tumour.data.shape == (
        25,
        256,
        256,
    )
    np.testing.assert_allclose(image.scale, (6.5, 0.78125, 0.78125))
    np.testing.assert_allclose(tumour.translate, image.translate)
    out = tmp_path / "tumour.seg.nrrd"
    tumour.save(str(out), plugin="napari-textseg")
    header = nrrd.read_header(str(out))
    assert tuple(header["sizes"]) == (256, 256, 25) and header["Segment0_LabelValue"] == "1"
    [back] = viewer.open(str(out), plugin="napari-textseg")
    np.testing.assert_array_equal(back.data, tumour.data)
