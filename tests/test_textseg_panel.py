"""The TextSeg panel: one model on top, a tab per task, on a laptop screen.

What a user sees: every action button of each tab in view at 1366 x 768, nothing cut at
the right edge, readable tab titles; a status line per section that speaks only of that
section's work; Cancel that stops only its own section's task; one embedding cache for
clicks and text; and no traceback when the image or the panel goes away mid-task.
"""

import threading

import numpy as np
import pytest
from qtpy.QtCore import QEvent
from qtpy.QtWidgets import QApplication, QPushButton

from conftest import HANG_MS
from napari_textseg._napari.model_controller import model_controller_for
from napari_textseg._napari.prompts_controller import controller_for
from napari_textseg._napari.settings import ModelChoice
from tiny_models import registered_tiny_sam2

pytestmark = pytest.mark.viewer


@pytest.fixture(scope="module")
def tiny_sam2(tmp_path_factory):
    return registered_tiny_sam2(tmp_path_factory.mktemp("ckpt"), "test_panel_sam2")


@pytest.fixture
def panel(make_napari_viewer_proxy, ct_path):
    viewer = make_napari_viewer_proxy(show=True)
    viewer.open(str(ct_path), plugin="napari-textseg")
    _, widget = viewer.window.add_plugin_dock_widget("napari-textseg", "TextSeg")
    return viewer, widget


def _settle(rounds: int = 10) -> None:
    for _ in range(rounds):
        QApplication.processEvents()


def _load(qtbot, viewer, checkpoint):
    controller = controller_for(viewer)
    with qtbot.waitSignal(controller.workspace.model_ready, timeout=HANG_MS):
        model_controller_for(controller.viewer).load_model(
            ModelChoice("test_panel_sam2", str(checkpoint), "cpu")
        )
    return controller


def _fully_visible(widget, viewport) -> bool:
    """``widget`` lies inside ``viewport`` (a scroll area's visible part) and inside the panel."""
    top_left = widget.mapTo(viewport, widget.rect().topLeft())
    bottom_right = widget.mapTo(viewport, widget.rect().bottomRight())
    return viewport.rect().contains(top_left) and viewport.rect().contains(bottom_right)


def test_every_button_of_every_tab_is_in_view_at_1366x768(panel):
    viewer, widget = panel
    window = viewer.window._qt_window
    window.resize(1366, 768)
    _settle()
    assert window.height() <= 768 and window.minimumSizeHint().height() <= 768
    bar = widget.tabs.tabBar()
    titles = [bar.tabText(i) for i in range(bar.count())]
    assert titles == ["Prompts", "Propagate", "Text", "Compare"]
    for i, title in enumerate(titles):  # whole titles, not "Point pr..."
        assert bar.tabRect(i).width() >= bar.fontMetrics().horizontalAdvance(title)
    dock_width = widget.width()
    for name, section in widget.sections.items():
        widget.show_section(name)
        _settle()
        content = section.layout_.parentWidget()
        viewport = content.parentWidget()  # the scroll area's viewport
        assert content.width() <= viewport.width(), (
            f"{name}: {content.width() - viewport.width()} px cut at the right"
        )
        for button in section.findChildren(QPushButton):
            if not button.isVisibleTo(section):
                continue
            assert _fully_visible(button, viewport), (
                f"{name}: {button.text()!r} is scrolled out of view"
            )
            right = button.mapTo(widget, button.rect().topRight()).x()
            assert right <= dock_width, f"{name}: {button.text()!r} is cut at the right edge"
    for button in widget.model_section.findChildren(QPushButton):
        assert button.mapTo(widget, button.rect().topRight()).x() <= dock_width


def test_each_section_has_its_own_status_cleared_by_its_inputs(panel, qtbot, tiny_sam2):
    viewer, widget = panel
    controller = _load(qtbot, viewer, tiny_sam2)
    assert "ready on cpu" in widget.model_section.status.text()
    text_before = widget.text.status.text()
    controller.prompts_layer().add(np.array([15, 50, 40]))
    assert widget.prompts.segment.isEnabled(), "S is disabled right after the model is ready"
    widget.prompts.segment.click()

    def segmented() -> None:
        assert widget.prompts.status.text().startswith("slice 15:"), widget.prompts.status.text()

    qtbot.waitUntil(segmented, timeout=HANG_MS)
    # The S went to the prompts section only: the model's line still says what it said, text is
    # untouched.
    assert "ready on cpu" in widget.model_section.status.text()
    assert widget.text.status.text() == text_before
    widget.text.text.setPlainText("")
    widget.text.run.click()
    assert (
        widget.text.status.text().startswith("error: ")
        and "at least one target" in widget.text.status.text()
    )
    assert widget.prompts.status.text().startswith("slice 15:")
    widget.text.text.setPlainText("liver")  # typing clears the error: it was about the old text
    assert widget.text.status.text() == ""
    widget.compare.prediction.activated.emit(0)
    assert widget.prompts.status.text().startswith("slice 15:")


def test_cancel_stops_only_its_own_sections_task(panel, qtbot):
    viewer, widget = panel
    release = threading.Event()
    tasks = widget.prompts.tasks
    tasks.start("text", lambda: release.wait(30), None, "Text labelling")
    tasks.start("compare", lambda: release.wait(30), None, "Comparing")
    assert tasks.busy("text") and tasks.busy("compare")
    widget.compare.cancel_button.click()  # the worker stops at its next yield or return
    assert "cancelled" in widget.compare.status.text()
    assert widget.text.status.text() == widget.text.hint  # the text section heard nothing
    widget.prompts.cancel_button.click()  # nothing of the prompts section runs: nothing to say
    assert "cancelled" not in widget.prompts.status.text()
    release.set()
    qtbot.waitUntil(lambda: not tasks.busy(), timeout=HANG_MS)


def test_text_and_clicks_share_one_embedding_cache(
    make_napari_viewer_proxy, qtbot, ct_path, tiny_sam2
):
    """Text + click on the image just clicked encodes each slice once (it made a second
    session with its own 1 GiB cache)."""
    viewer = make_napari_viewer_proxy()
    (image,) = viewer.open(str(ct_path), plugin="napari-textseg")
    _, widget = viewer.window.add_plugin_dock_widget("napari-textseg", "TextSeg")
    controller = _load(qtbot, viewer, tiny_sam2)
    encoded = []
    encode = controller.workspace.slice_model.encode
    controller.workspace.slice_model.encode = lambda frame: (
        encoded.append(frame.tobytes()) or encode(frame)
    )
    controller.prompts_layer().add(np.array([15, 50, 40]))
    controller.segment_slice()
    qtbot.waitUntil(lambda: not controller.workspace.working, timeout=HANG_MS)
    clicked = len(encoded)  # the clicked slice, and its neighbours prefetched for the next click
    widget.text.text.setPlainText("liver")
    widget.text.use_clicks.setChecked(True)
    widget.text.run.click()
    qtbot.waitUntil(lambda: not controller.workspace.working, timeout=HANG_MS)
    assert "labelled liver" in widget.text.status.text()
    workspace = controller.workspace
    assert workspace.session_for(image, whole_volume=True) is workspace.session_for(image)
    assert len(encoded) == len(set(encoded))  # no slice encoded twice
    assert len(encoded) > clicked  # the text run propagated, reusing what the click had encoded


def test_closing_the_image_mid_task_stops_it_without_a_write(
    make_napari_viewer_proxy, qtbot, ct_path, tiny_sam2, caplog
):
    viewer = make_napari_viewer_proxy()
    (image,) = viewer.open(str(ct_path), plugin="napari-textseg")
    _, widget = viewer.window.add_plugin_dock_widget("napari-textseg", "TextSeg")
    controller = _load(qtbot, viewer, tiny_sam2)
    controller.prompts_layer().add(np.array([15, 50, 40]))
    controller.propagate(section="propagation")
    viewer.layers.remove(image)
    qtbot.waitUntil(lambda: not controller.workspace.working, timeout=HANG_MS)
    assert "abdomen_ct was closed" in widget.propagation.status.text()
    assert "object (napari-textseg)" not in viewer.layers
    assert "Traceback" not in caplog.text


def test_closing_the_panel_mid_task_leaves_no_traceback(
    make_napari_viewer_proxy, qtbot, ct_path, tiny_sam2, caplog
):
    viewer = make_napari_viewer_proxy()
    viewer.open(str(ct_path), plugin="napari-textseg")
    dock, widget = viewer.window.add_plugin_dock_widget("napari-textseg", "TextSeg")
    controller = _load(qtbot, viewer, tiny_sam2)
    controller.prompts_layer().add(np.array([15, 50, 40]))
    controller.propagate(section="propagation")
    listening = len(controller.tasks.message)
    viewer.window.remove_dock_widget(dock)
    widget.deleteLater()  # as when napari deletes a closed dock with its widget
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    _settle()
    assert len(controller.tasks.message) < listening  # the deleted sections no longer listen
    qtbot.waitUntil(lambda: not controller.workspace.working, timeout=HANG_MS)
    _settle()
    assert "has been deleted" not in caplog.text and "Traceback" not in caplog.text


def test_settings_are_one_evented_model_that_every_view_shows(panel):
    """The TextSeg tab and the separate Text dock are two views of one model."""
    viewer, widget = panel
    _, dock = viewer.window.add_plugin_dock_widget("napari-textseg", "Text labelling")
    settings = controller_for(viewer).settings
    widget.text.text.setPlainText("liver, spleen")
    assert settings.text.text == "liver, spleen" and dock.text.toPlainText() == "liver, spleen"
    settings.text.use_clicks = True
    assert widget.text.use_clicks.isChecked() and dock.use_clicks.isChecked()
    settings.propagation.policy = "ranked"
    assert widget.propagation.policy.currentText() == "ranked"
    assert settings.propagation.engine_settings().policy == "ranked"


def test_an_all_nan_image_is_one_line_in_the_prompts_tab(panel):
    viewer, widget = panel
    viewer.add_image(np.full((8, 16, 16), np.nan, dtype=np.float32), name="blank")
    assert (
        widget.prompts.status.text()
        == "blank: all voxels are NaN or infinite; there is nothing to segment in it"
    )
    viewer.add_image(np.full((8, 16, 16), 7, dtype=np.int16), name="flat")
    assert "flat: every voxel is 7" in widget.prompts.status.text()


def test_every_model_picker_of_a_viewer_shows_the_one_model_choice(panel):
    """The Point prompts dock beside the TextSeg panel: one model, not two that disagree."""
    viewer, widget = panel
    _, dock = viewer.window.add_plugin_dock_widget("napari-textseg", "Point prompts")
    sam = widget.model.findData("sam_vit_b")
    widget.model.setCurrentIndex(sam)
    widget.model_section.device.setCurrentText("cpu")
    assert dock.model.currentData() == "sam_vit_b" and dock.device.currentText() == "cpu"
    dock.model_section.checkpoint.setText("/tmp/mine.pth")
    assert widget.model_section.checkpoint.text() == "/tmp/mine.pth"
    settings = controller_for(viewer).workspace.settings.model
    assert settings.choice() == ModelChoice("sam_vit_b", "/tmp/mine.pth", "cpu", "auto", "f32")


def test_the_plugin_s_layers_are_its_own_by_reference_not_by_name(panel, qtbot, tiny_sam2):
    """Renaming the prompts layer (or naming another layer like it) changes nothing: the
    controller keeps the layers it made."""
    viewer, widget = panel
    controller = _load(qtbot, viewer, tiny_sam2)
    prompts = controller.prompts_layer()
    prompts.name = "my clicks"
    viewer.add_points(np.array([[15, 5, 5]]), name="prompts (napari-textseg)")  # a look-alike
    prompts.add(np.array([15, 50, 40]))
    widget.prompts.segment.click()
    qtbot.waitUntil(lambda: widget.prompts.status.text().startswith("slice 15:"), timeout=HANG_MS)
    controller.new_object()
    assert len(viewer.layers["my clicks"].data) == 0
    assert len(viewer.layers["prompts (napari-textseg)"].data) == 1  # not the plugin's: untouched
