"""The point-prompt and propagation widgets in a real viewer, with a tiny SAM2 model.

Model work runs in napari thread workers; the tests wait for the workers' signals and
check what a user sees: layers, label values, undo, cancel, and a responsive GUI.
"""

import time

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from conftest import HANG_MS, HANG_S
from napari_textseg._napari.autosave import autosaver_for
from napari_textseg._napari.model_controller import model_controller_for
from napari_textseg._napari.prompt_layer import PROMPT_LAYER, toggle_sign
from napari_textseg._napari.prompts_controller import PREVIEW_LAYER, controller_for
from napari_textseg._napari.settings import ModelChoice
from tiny_models import registered_tiny_sam2, tiny_card
from viewer_setup import viewer_with_model

pytestmark = pytest.mark.viewer


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return registered_tiny_sam2(tmp_path_factory.mktemp("ckpt"), "test_widget_sam2")


@pytest.fixture
def ready(make_napari_viewer_proxy, qtbot, ct_path, tiny_checkpoint):
    """A viewer with the CT, both widgets docked and the tiny model loaded."""
    viewer, controller, (points_widget, propagation_widget) = viewer_with_model(
        make_napari_viewer_proxy,
        qtbot,
        ct_path,
        ("Point prompts", "Propagation"),
        "test_widget_sam2",
        tiny_checkpoint,
    )
    layer = controller.prompts_layer()
    layer.add(np.array([15, 50, 40]))
    return viewer, controller, points_widget, propagation_widget


def _wait_idle(qtbot, controller, timeout=HANG_MS):
    qtbot.waitUntil(lambda: not controller.workspace.working, timeout=timeout)


def test_licence_is_shown(ready):
    _, _, points_widget, _ = ready
    points_widget.model.setCurrentIndex(points_widget.model.findData("sam2.1_hiera_tiny"))
    assert "Apache-2.0" in points_widget.licence.text()


def test_prompt_signs_are_a_feature_and_t_toggles(ready):
    viewer, controller, _, _ = ready
    layer = viewer.layers[PROMPT_LAYER]
    assert list(layer.features["sign"]) == ["positive"]
    assert toggle_sign(layer) == "negative"
    layer.add(np.array([15, 10, 10]))
    assert list(layer.features["sign"]) == ["positive", "negative"]
    np.testing.assert_allclose(layer.face_color[0][:3], [0, 224 / 255, 0], atol=0.01)
    np.testing.assert_allclose(layer.face_color[1][:3], [1, 32 / 255, 32 / 255], atol=0.01)


def test_segment_propagate_commit_and_undo(ready, qtbot):
    viewer, controller, points_widget, propagation_widget = ready
    controller.segment_slice()
    _wait_idle(qtbot, controller)
    preview = viewer.layers[PREVIEW_LAYER]
    assert preview.data.shape == (30, 101, 122)
    assert preview.data[15].any() and not preview.data[14].any()

    propagation_widget.empty_stop.setValue(0)
    propagation_widget.memory_size.setValue(3)
    propagation_widget.policy.setCurrentText("ranked")
    propagation_widget.projection.setCurrentText("point")
    options = controller.settings.propagation  # the controls are views of one evented model
    assert options.policy == "ranked" and options.memory_size == 3 and options.projection == "point"
    options.memory_size = 4  # ... and the model drives the controls (a script, another view)
    assert propagation_widget.memory_size.value() == 4
    assert controller.settings.propagation.engine_settings().memory_size == 4
    controller.propagate()
    _wait_idle(qtbot, controller)
    assert np.count_nonzero(preview.data.reshape(30, -1).any(axis=1)) > 1

    points_widget.name.setText("tumour")
    points_widget.value.setValue(9)
    points_widget._commit()
    labels = viewer.layers["labels"]
    assert labels.data.max() == 9
    assert "tumour" in list(labels.features["name"])
    assert len(viewer.layers[PROMPT_LAYER].data) == 0  # ready for the next object
    autosaver = autosaver_for(viewer)
    autosaver.wait()  # the commit was autosaved, named
    (saved,) = autosaver.store.entries(autosaver.key(viewer.layers["abdomen_ct"]))
    assert saved.names == {9: "tumour"} and np.array_equal(saved.load(), labels.data)
    labels.undo()
    assert labels.data.max() == 0  # one Undo reverts the whole commit


def test_cancel_mid_propagation_leaves_labels_untouched(ready, qtbot):
    viewer, controller, _, propagation_widget = ready
    existing = viewer.add_labels(
        np.zeros((30, 101, 122), np.uint8),
        name="organs",
        scale=viewer.layers[0].scale,
        translate=viewer.layers[0].translate,
    )
    existing.data[3, 3, 3] = 1
    before = existing.data.copy()
    propagation_widget.empty_stop.setValue(0)
    controller.propagate()
    controller.cancel()
    _wait_idle(qtbot, controller)
    np.testing.assert_array_equal(existing.data, before)
    assert PREVIEW_LAYER not in viewer.layers or not viewer.layers[PREVIEW_LAYER].data.any()


def test_event_loop_stays_responsive_while_propagating(ready, qtbot):
    """The GUI must keep painting: no gap over 100 ms between timer ticks."""
    viewer, controller, _, propagation_widget = ready
    propagation_widget.empty_stop.setValue(0)
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    started = time.perf_counter()
    controller.propagate()
    [task] = [
        t for t in controller.tasks._tasks if t.section == "propagation"
    ]  # (the precompute may run too)
    worker = task.worker
    ended = []
    worker.returned.connect(lambda _: ended.append(time.perf_counter()))
    _wait_idle(qtbot, controller)
    timer.stop()
    elapsed = ended[0] - started
    # While the model runs (until the worker hands its mask back to the main thread).
    gaps = np.diff([t for t in ticks if t <= ended[0]])
    assert elapsed > 0.3, "the propagation was too short to measure responsiveness"
    assert gaps.max() < 0.1, f"the event loop stalled for {gaps.max() * 1000:.0f} ms"


def test_errors_are_messages_not_tracebacks(ready, qtbot):
    viewer, controller, points_widget, _ = ready
    viewer.layers[PROMPT_LAYER].add(np.array([15, 500, 40]))  # outside the slice
    with pytest.raises(Exception, match="outside the volume"):
        controller.segment_slice()
    points_widget.segment.click()  # the button: the message lands in the panel
    assert (
        points_widget.status.text().startswith("error: ")
        and "outside the volume" in points_widget.status.text()
    )


def test_a_failing_worker_is_one_line_in_the_panel_and_no_traceback(ready, qtbot, caplog):
    """A worker that raises (a model not downloaded, say) reached the user as an uncaught
    exception: a notification with "View Traceback", ~70 lines in the terminal."""
    import logging

    from napari.utils.notifications import notification_manager

    viewer, controller, points_widget, _ = ready
    before = len(notification_manager.records)

    def not_downloaded():
        raise FileNotFoundError("sam_vit_b is not downloaded yet: press Download in Point prompts")

    def buggy():
        raise KeyError("slot")
        yield  # a generator worker, as propagation runs

    with caplog.at_level(logging.DEBUG, logger="napari_textseg"):
        for work, shown in (
            (not_downloaded, "error: sam_vit_b is not downloaded yet"),
            (buggy, "error: unexpected KeyError: 'slot'"),
        ):
            with qtbot.waitSignal(
                controller.workspace.busy, check_params_cb=lambda busy: not busy, timeout=HANG_MS
            ):
                controller.tasks.start("prompts", work, lambda _: None, "Testing")
            qtbot.waitUntil(
                lambda s=shown: points_widget.status.text().startswith(s), timeout=HANG_MS
            )
            assert "\n" not in points_widget.status.text()
    assert len(notification_manager.records) == before  # no "View Traceback" notification
    levels = {r.levelname for r in caplog.records if r.exc_info}
    assert levels == {"DEBUG", "ERROR"}  # the expected one at debug, the bug at error


def test_a_click_while_the_model_loads_is_refused_politely(
    make_napari_viewer_proxy, qtbot, ct_path, tiny_checkpoint
):
    viewer = make_napari_viewer_proxy()
    viewer.open(str(ct_path), plugin="napari-textseg")
    controller = controller_for(viewer)
    controller.prompts_layer().add(np.array([15, 50, 40]))
    with pytest.raises(ValueError, match="choose a model"):
        controller.segment_slice()
    with qtbot.waitSignal(controller.workspace.model_ready, timeout=HANG_MS):
        model_controller_for(controller.viewer).load_model(
            ModelChoice("test_widget_sam2", str(tiny_checkpoint), "cpu")
        )
        with pytest.raises(ValueError, match="still loading"):
            controller.segment_slice()


def test_switching_the_model_mid_session_starts_a_fresh_object(
    ready, qtbot, tiny_checkpoint, tmp_path
):
    from tiny_models import TINY_SAM_ARCH, save_tiny_sam

    viewer, controller, _, _ = ready
    controller.segment_slice()
    _wait_idle(qtbot, controller)
    assert controller.workspace.session is not None
    tiny_card("sam", TINY_SAM_ARCH, "test_widget_sam", "tiny_sam.pth")
    save_tiny_sam(tmp_path / "tiny_sam.pth")
    with qtbot.waitSignal(controller.workspace.model_ready, timeout=HANG_MS):
        model_controller_for(controller.viewer).load_model(
            ModelChoice("test_widget_sam", str(tmp_path / "tiny_sam.pth"), "cpu")
        )
    # No embeddings of the old model are reused: a session now (the background encoding's) is the
    # new model's.
    session = controller.workspace.session
    assert session is None or session.slice_model is controller.workspace.slice_model
    controller.segment_slice()  # the clicks are kept, segmented with the new model
    _wait_idle(qtbot, controller)
    assert controller.workspace.session.slice_model.family == "sam"


def test_a_failing_worker_does_not_abort_a_script_without_napari_run(tmp_path):
    """Driven from a script (no napari.run()), the re-raise of a worker's error in a Qt
    slot aborted the whole process."""
    import os
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(
        "import time\n"
        "import napari, numpy as np\n"
        "from qtpy.QtWidgets import QApplication\n"
        "from napari_textseg._napari.model_controller import model_controller_for\n"
        "from napari_textseg._napari.settings import ModelChoice\n"
        "viewer = napari.Viewer(show=False)\n"
        "viewer.add_image(np.zeros((4, 8, 8), np.float32))\n"
        "controller = model_controller_for(viewer)\n"
        "messages = []\n"
        "controller.workspace.tasks.message.connect(lambda section, text: messages.append(text))\n"
        "controller.load_model(ModelChoice('sam_vit_b'))  # not downloaded: the worker raises\n"
        "start = time.time()\n"
        "while controller.workspace.loading and time.time() - start < 120:\n"
        "    QApplication.processEvents()\n"
        "    time.sleep(0.01)\n"
        "print('LAST:', messages[-1])\n"
        "viewer.close()\n"
    )
    env = {**os.environ, "NAPARI_TEXTSEG_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=HANG_S, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LAST: error: " in result.stdout and "not downloaded" in result.stdout
    assert "Traceback" not in result.stderr


def test_download_shows_the_licence_then_fetches_into_the_cache(
    make_napari_viewer_proxy, qtbot, served, monkeypatch
):
    """Where a model is missing, the panel offers Download; the licence comes first."""
    from qtpy.QtWidgets import QMessageBox

    from napari_textseg.models.store import cached_path
    from tiny_models import TINY_SAM_ARCH

    url, _, _ = served
    card = tiny_card(
        "sam", TINY_SAM_ARCH, "test_panel_download", "tiny_sam.pth", url=f"{url}/tiny_sam.pth"
    )
    viewer = make_napari_viewer_proxy()
    _, widget = viewer.window.add_plugin_dock_widget("napari-textseg", "Point prompts")
    widget.model.setCurrentIndex(widget.model.findData("sam_vit_b"))
    widget.load.click()
    qtbot.waitUntil(
        lambda: widget.model_section.status.text().startswith("error:"), timeout=HANG_MS
    )
    message = widget.model_section.status.text()
    assert "press Download" in message and "checkpoint field" in message and "--" not in message

    widget.model.setCurrentIndex(widget.model.findData(card.id))
    assert widget.download.isEnabled()
    asked = []
    monkeypatch.setattr(
        QMessageBox,
        "question",
        lambda *args: asked.append(args[2]) or QMessageBox.StandardButton.Yes,
    )
    widget.download.click()
    qtbot.waitUntil(lambda: "downloaded to" in widget.model_section.status.text(), timeout=HANG_MS)
    assert "Apache-2.0" in asked[0] and str(cached_path(card)) in asked[0]
    assert cached_path(card).is_file() and not widget.download.isEnabled()
    widget.model.setCurrentIndex(widget.model.findData("phantom_sam"))
    assert not widget.download.isEnabled()  # shipped with the package: nothing to download


def test_after_commit_the_next_click_is_a_prompt_and_colours_do_not_collide(ready, qtbot):
    """After Commit the new Labels layer was active, so the next click added no prompt;
    the committed label 1 was brown, like the reference spine."""
    from conftest import data_file

    viewer, controller, points_widget, _ = ready
    [reference] = viewer.open(str(data_file("abdomen_ct_organs.nii.gz")), plugin="napari-textseg")
    ref_colours = np.asarray(
        reference.colormap.map(np.array(list(reference.features["index"])[1:]))
    )
    for name in ("lesion", "liver"):
        viewer.layers.selection.active = viewer.layers[PROMPT_LAYER]
        controller.prompts_layer().add(np.array([15, 50, 40]))
        controller.segment_slice()
        _wait_idle(qtbot, controller)
        points_widget.name.setText(name)
        points_widget._commit()
        prompts = viewer.layers[PROMPT_LAYER]
        active, mode = viewer.layers.selection.active, str(prompts.mode)
        assert active.name == PROMPT_LAYER  # (the test viewer hands out proxies: no "is")
        assert mode == "add", mode
    labels = viewer.layers["labels"]
    lesion, liver = (np.asarray(labels.colormap.map(np.array([v])))[0] for v in (1, 2))
    nearest = np.linalg.norm(ref_colours[:, :3] - lesion[:3], axis=1).min()
    assert nearest > 0.15, f"the new label's colour is {nearest:.3f} from a reference organ's"
    ref_liver = int(
        list(reference.features["index"])[list(reference.features["name"]).index("liver")]
    )
    np.testing.assert_allclose(
        liver, np.asarray(reference.colormap.map(np.array([ref_liver])))[0], atol=1e-6
    )


def test_layers_carry_axis_labels_and_units(ready):
    viewer, controller, _, _ = ready
    image = viewer.layers["abdomen_ct"]
    assert (
        tuple(image.axis_labels) == ("z", "y", "x")
        and tuple(str(u) for u in image.units) == ("millimeter",) * 3
    )
    assert tuple(controller.prompts_layer().axis_labels) == ("z", "y", "x")
    assert tuple(viewer.dims.axis_labels[-3:]) == ("z", "y", "x")  # the slider said "-3"


def test_stacked_panels_fit_a_1366x768_screen(make_napari_viewer_proxy, qtbot):
    """Docked from the Plugins menu (stacked, not tabbed) they forced the window to 1155 px."""
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer_proxy()
    panels = [
        viewer.window.add_plugin_dock_widget("napari-textseg", name)[1]
        for name in ("Point prompts", "Propagation", "Text labelling", "Compare with reference")
    ]
    window = viewer.window._qt_window
    window.resize(1366, 768)
    for _ in range(5):
        QApplication.processEvents()
    assert window.minimumSizeHint().height() <= 768 and window.height() <= 768
    for panel in panels:
        assert panel.status.wordWrap()
        panel.status.setText("error: " + "a long message that must wrap, not widen the panel " * 6)
    QApplication.processEvents()
    assert window.minimumSizeHint().height() <= 768
    points = panels[0]
    assert points.working.isHidden()
    assert points.model.toolTip() or points.model.itemData(0, 3)  # full model names in the tooltips


def test_a_working_line_says_what_runs(ready, qtbot):
    """Status showed only as a spinner in napari's collapsed activity area."""
    import threading

    _, controller, points_widget, propagation_widget = ready
    release = threading.Event()
    controller.tasks.start("prompts", lambda: release.wait(30), lambda _: None, "Propagating")
    for panel in (points_widget, propagation_widget):
        assert (
            panel.working.isVisibleTo(panel) and panel.working.text() == "working: Propagating ..."
        )
    with qtbot.waitSignal(
        controller.workspace.busy, check_params_cb=lambda busy: not busy, timeout=HANG_MS
    ):
        release.set()
    assert not points_widget.working.isVisibleTo(points_widget)


def test_a_failed_load_keeps_the_model_that_was_loaded(ready, qtbot):
    """Load a model that is not downloaded: one error line, and S still segments with the
    model that was loaded (before: 'choose a model and press Load first')."""
    viewer, controller, points_widget, _ = ready
    before = controller.workspace.slice_model
    model_controller_for(controller.viewer).load_model(ModelChoice("sam_vit_b"))
    qtbot.waitUntil(lambda: not controller.workspace.loading, timeout=HANG_MS)
    assert "sam_vit_b is not downloaded yet" in points_widget.model_section.status.text()
    assert controller.workspace.slice_model is before
    controller.segment_slice()
    _wait_idle(qtbot, controller)
    assert viewer.layers[PREVIEW_LAYER].data[15].any()


def test_cancel_in_the_prompts_tab_stops_the_propagation_it_started(ready, qtbot):
    """Propagate (or Shift+S) pressed in the Prompts tab is that tab's work: its Cancel stops
    it, its status says so, and the mask is left as it was (before: nothing stopped)."""
    viewer, controller, points_widget, propagation_widget = ready
    propagation_widget.empty_stop.setValue(0)
    points_widget.prompts.propagate.click()
    assert controller.tasks.busy("prompts") and not controller.tasks.busy("propagation")
    points_widget.cancel.click()
    _wait_idle(qtbot, controller)
    assert points_widget.status.text() == "cancelled; the labels are as they were"
    assert PREVIEW_LAYER not in viewer.layers or not viewer.layers[PREVIEW_LAYER].data.any()


def test_a_propagation_shows_slice_k_of_n_and_the_time_left(ready, qtbot):
    viewer, controller, _, propagation_widget = ready
    propagation_widget.empty_stop.setValue(0)
    said = []
    controller.tasks.message.connect(lambda section, line: said.append((section, line)))
    controller.propagate()
    _wait_idle(qtbot, controller)
    lines = [line for section, line in said if section == "propagation"]
    assert "propagating: slice 1 of 30; Cancel stops it" in lines
    assert any(
        line.startswith("propagating: slice 5 of 30, about ") and " s left" in line
        for line in lines
    )
    assert lines[-1].startswith("propagated through 30 slices")


def test_ctrl_z_where_the_panel_leaves_you_undoes_the_commit(ready, qtbot):
    """After Commit the prompt layer stays selected (ready for the next object): Ctrl+Z there
    takes the commit back (before: it did nothing, napari's undo lives on the Labels layer)."""
    viewer, controller, _, _ = ready
    controller.segment_slice()
    _wait_idle(qtbot, controller)
    labels = controller.commit()
    assert labels.data.any() and viewer.layers.selection.active.name == PROMPT_LAYER
    controller.undo()  # what Ctrl+Z on the prompt layer runs
    assert not labels.data.any()
    controller.undo()
    assert controller is controller_for(viewer) and not labels.data.any()


def test_the_plugin_keys_reach_it_with_the_image_selected_and_napari_gets_them_back(ready, qtbot):
    """With the CT selected, C is the plugin's commit (before: napari's auto-contrast ran and
    the window jumped); once the panels are closed, C is napari's auto-contrast again."""
    viewer, controller, points_widget, propagation_widget = ready
    image = viewer.layers["abdomen_ct"]
    keys = viewer.window._qt_viewer._key_map_handler

    def press(key: str) -> None:
        viewer.layers.selection.active = image
        keys.press_key(key)
        keys.release_key(key)

    image.contrast_limits = (-160.0, 240.0)
    press("c")
    assert (
        points_widget.status.text() == "nothing to commit: segment an object first"
    )  # the plugin's C
    assert tuple(image.contrast_limits) == (-160.0, 240.0)
    press("t")
    assert points_widget.status.text() == "new clicks are negative"
    from qtpy.QtCore import QEvent
    from qtpy.QtWidgets import QApplication

    for widget in (points_widget, propagation_widget):
        viewer.window.remove_dock_widget(widget)
        widget.deleteLater()  # as when napari deletes a closed dock with its widget
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    qtbot.waitUntil(lambda: not image.keymap, timeout=HANG_MS)
    press("c")
    assert tuple(image.contrast_limits) != (-160.0, 240.0)
    # The viewer's keys are released too: S no longer reaches the closed panel.
    assert not any(str(key) in ("S", "Shift+S", "C", "T", "B", "P") for key in viewer.keymap)
    press("s")
