"""The Compare with reference panel in a real viewer, on the CT's reference organs."""

import numpy as np
import pytest

from conftest import HANG_MS, data_file

pytestmark = pytest.mark.viewer


@pytest.fixture
def viewer_and_panel(make_napari_viewer_proxy):
    viewer = make_napari_viewer_proxy()
    (ref,) = viewer.open(str(data_file("abdomen_ct_organs.nii.gz")), plugin="napari-textseg")
    _, panel = viewer.window.add_plugin_dock_widget("napari-textseg", "Compare with reference")
    return viewer, ref, panel


def test_compare_fills_a_named_table(viewer_and_panel, qtbot):
    viewer, ref, panel = viewer_and_panel
    viewer.add_labels(
        np.roll(ref.data, 1, axis=1),
        name="pred",
        scale=ref.scale,
        translate=ref.translate,
        features=ref.features,
    )
    panel.prediction.setCurrentText("pred")
    panel.reference.setCurrentText(ref.name)
    panel.tolerance.setValue(3.0)
    panel.run.click()
    qtbot.waitUntil(lambda: panel.report is not None and panel.run.isEnabled(), timeout=HANG_MS)
    column = {title: j for j, title in enumerate(panel.COLUMNS)}
    names = [panel.table.item(i, column["name"]).text() for i in range(panel.table.rowCount())]
    assert "liver" in names and len(names) == len([v for v in np.unique(ref.data) if v])
    liver = names.index("liver")
    assert (
        panel.table.item(liver, column["NSD"]).text() == "1.0000"
    )  # every surface point within 3 mm
    assert 0.8 < float(panel.table.item(liver, column["Dice"]).text()) < 1.0
    assert "mean Dice" in panel.status.text()


def test_layers_on_other_grids_are_refused_and_the_table_kept(viewer_and_panel, qtbot):
    viewer, ref, panel = viewer_and_panel
    viewer.add_labels(ref.data[:, :50], name="cropped", scale=ref.scale)
    viewer.add_labels(
        ref.data, name="rescaled", scale=np.asarray(ref.scale) * 2, translate=ref.translate
    )
    panel.reference.setCurrentText(ref.name)
    for name, message in (("cropped", "voxels"), ("rescaled", "voxel sizes differ")):
        panel.prediction.setCurrentText(name)
        panel.run.click()
        shown = panel.status.text()  # the message is the panel's, not a notification
        assert shown.startswith("error: ") and message in shown and "nothing is resampled" in shown
        assert (
            not panel.tasks.busy("compare") and panel.report is None and panel.table.rowCount() == 0
        )
