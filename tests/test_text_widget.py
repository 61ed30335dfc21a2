"""The Text labelling panel in a real viewer: organs arrive one by one into a named layer.

A tiny SAM2 (random weights) segments and a tiny CLIP (random weights) locates, so the
masks mean nothing; what is checked is what a user sees: names, values, colours, undo,
re-running one organ, cancel, and refusals that change nothing.
"""

import numpy as np
import pytest

from conftest import HANG_MS
from napari_textseg._napari.label_writer import CONFIDENCE_KEY
from napari_textseg._napari.prompts_controller import PromptsController
from napari_textseg._napari.text_controller import text_controller_for
from tiny_models import (
    TINY_DENSE_CLIP_ARCH,
    TINY_SAM2_ARCH,
    save_tiny_clip,
    save_tiny_sam2,
    tiny_card,
)
from viewer_setup import viewer_with_model

pytestmark = pytest.mark.viewer


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    tiny_card("sam2", TINY_SAM2_ARCH, "test_text_widget_sam2", "tiny_sam2.pt")
    tiny_card("clip", TINY_DENSE_CLIP_ARCH, "test_text_widget_clip", "dense_clip.bin")
    save_tiny_sam2(folder / "tiny_sam2.pt")
    save_tiny_clip(folder / "dense_clip.bin", TINY_DENSE_CLIP_ARCH)
    return folder


@pytest.fixture
def ready(make_napari_viewer_proxy, qtbot, ct_path, checkpoints):
    viewer, _, (widget,) = viewer_with_model(
        make_napari_viewer_proxy,
        qtbot,
        ct_path,
        ("Text labelling",),
        "test_text_widget_sam2",
        checkpoints / "tiny_sam2.pt",
    )
    widget.clip.addItem("test clip", "test_text_widget_clip")
    widget.clip.setCurrentIndex(widget.clip.count() - 1)
    widget.clip_file.setText(str(checkpoints / "dense_clip.bin"))
    return viewer, widget, text_controller_for(viewer)


def _wait_idle(qtbot, controller, timeout=HANG_MS):
    qtbot.waitUntil(lambda: not controller.workspace.working, timeout=timeout)


def _names(layer):
    return {
        int(v): str(n)
        for v, n in zip(layer.features["index"], layer.features["name"], strict=True)
        if v
    }


def test_organs_arrive_named_with_their_own_colours_and_undo_one_at_a_time(ready, qtbot):
    viewer, widget, controller = ready
    widget.text.setPlainText("liver\nL kidney")
    widget._label()
    _wait_idle(qtbot, controller)
    layer = viewer.layers["organs"]
    assert _names(layer) == {1: "liver", 2: "left kidney"}
    assert set(layer.metadata[CONFIDENCE_KEY]) == {1, 2}
    assert layer.data.shape == viewer.layers[0].data.shape
    np.testing.assert_allclose(layer.scale, viewer.layers[0].scale)
    colours = layer.colormap.map(np.array([1, 2], dtype=layer.data.dtype))
    assert not np.allclose(colours[0], colours[1])
    before_undo = layer.data.copy()
    layer.undo()  # one Undo removes the last organ only, and gives back what it had taken
    assert not (layer.data == 2).any()
    assert (layer.data[before_undo == 1] == 1).all()
    assert set(np.unique(layer.data[before_undo == 2])) <= {0, 1}


def test_rerunning_one_organ_replaces_only_that_organ(ready, qtbot):
    viewer, widget, controller = ready
    existing = viewer.add_labels(
        np.zeros(viewer.layers[0].data.shape, np.uint16),
        name="atlas",
        scale=viewer.layers[0].scale,
        translate=viewer.layers[0].translate,
    )
    existing.data[5:25, 20:60, 20:60] = 4
    existing.features = {"index": [0, 4], "name": ["background", "spleen"]}
    existing.data[0, 0, 0] = 9  # a hand-drawn label
    widget._refresh_targets()
    widget.target.setCurrentText("atlas")
    widget.text.setPlainText("spleen, liver")
    widget._label()
    _wait_idle(qtbot, controller)
    names = _names(existing)
    assert names[4] == "spleen" and names[10] == "liver"  # the same name keeps its value
    first = existing.data.copy()
    assert first[0, 0, 0] == 9
    widget.text.setPlainText("spleen")
    controller.workspace.controller(PromptsController).prompts_layer().add(np.array([15, 40, 40]))
    widget.use_clicks.setChecked(True)
    widget._label()
    _wait_idle(qtbot, controller)
    after = existing.data
    np.testing.assert_array_equal(
        after == 10, (first == 10) & (after != 4)
    )  # liver only loses what spleen won
    assert after[0, 0, 0] == 9


def test_cancel_keeps_finished_organs_and_leaves_no_trace_of_the_next(ready, qtbot):
    viewer, widget, controller = ready
    cancelled = []

    def cancel_after_first(section: str, message: str) -> None:
        if section == "text" and message.startswith("liver:") and not cancelled:
            cancelled.append(message)
            controller.cancel()

    controller.workspace.tasks.message.connect(cancel_after_first)
    widget.text.setPlainText("liver, spleen, pancreas")
    widget._label()
    _wait_idle(qtbot, controller)
    layer = viewer.layers["organs"]
    assert cancelled
    assert _names(layer) == {1: "liver"}
    assert set(np.unique(layer.data)) <= {0, 1}


@pytest.mark.parametrize(
    "text, message", [("", "at least one target"), ("liver, hepar", "same target")]
)
def test_bad_text_is_refused_before_any_work(ready, text, message):
    viewer, widget, controller = ready
    widget.text.setPlainText(text)
    with pytest.raises(Exception, match=message):
        widget._label()
    assert not controller.workspace.working and "organs" not in viewer.layers


def test_a_misspelt_organ_is_refused_with_what_it_may_mean_unless_any_name_is_ticked(ready, qtbot):
    viewer, widget, controller = ready
    widget.text.setPlainText("livr")
    with pytest.raises(
        Exception, match="unknown organ 'livr': did you mean liver\\? .*tick 'any name'"
    ):
        widget._label()
    widget.text.setPlainText("kidney")
    with pytest.raises(Exception, match="'kidney' names 2 organs: left kidney, right kidney"):
        widget._label()
    assert not controller.workspace.working and "organs" not in viewer.layers
    widget.any_name.setChecked(True)  # free text, labelled as typed
    widget._label()
    _wait_idle(qtbot, controller)
    assert _names(viewer.layers["organs"]) == {1: "kidney"}


def test_a_target_layer_of_another_shape_is_refused_and_left_as_it_was(ready):
    viewer, widget, controller = ready
    other = viewer.add_labels(np.ones((4, 5, 6), np.uint8), name="other")
    widget._refresh_targets()
    widget.target.setCurrentText("other")
    widget.text.setPlainText("liver")
    with pytest.raises(Exception, match="shape"):
        widget._label()
    assert (other.data == 1).all()


def test_the_note_names_the_backend_that_label_then_runs(ready, monkeypatch):
    """The Text tab's note and its Label button follow one plan (issue 34): for every
    combination of backend, 'use my clicks or box' and 'GPU backend on this CPU', the
    note names what Label starts, or says why Label refuses, in the same words."""
    import napari_textseg.engine.text.backends as backends
    from napari_textseg.core.errors import InputError

    viewer, widget, controller = ready
    # VoxTell installed with its weights; Medical-SAM3 installed, without a GPU here.
    real = backends.why_unavailable

    def available(backend, modality, device_type, *, allow_cpu=False, weights_present=None):
        if backend == "voxtell":
            return None
        if backend == "medical-sam3":
            return None if allow_cpu else "Medical-SAM3 3-D needs a CUDA GPU"
        return real(backend, modality, device_type, allow_cpu=allow_cpu)

    monkeypatch.setattr(backends, "why_unavailable", available)
    started = []
    tasks = controller.workspace.tasks
    monkeypatch.setattr(tasks, "start", lambda section, work, done, what, **k: started.append(what))
    controller.workspace.prompt_layers.clicks(viewer.layers["abdomen_ct"]).add(
        np.array([15, 40, 40])
    )
    widget.text.setPlainText("liver")
    seen = set()
    for backend in ("auto", "clip-sam", "voxtell", "medical-sam3"):
        for clicks in (False, True):
            for allow_cpu in (False, True):
                settings = controller.settings
                settings.backend, settings.use_clicks, settings.allow_cpu = (
                    backend,
                    clicks,
                    allow_cpu,
                )
                note = widget.backend_note.text()
                started.clear()
                try:
                    controller.run()
                except InputError as err:
                    assert f"cannot run: {err}" in note, (backend, clicks, allow_cpu, note)
                    seen.add("refused")
                    continue
                [what] = started
                title = what.removeprefix("Text labelling (").removesuffix(")")
                assert f"Label will run: {title}" in note, (backend, clicks, allow_cpu, note, what)
                seen.add(title)
    # auto runs VoxTell without clicks and CLIP + SAM with them; the GPU backend only when allowed
    assert seen == {"VoxTell (trained 3-D, free text)", "CLIP + SAM (training-free)",
                    "Medical-SAM3 3-D (trained, GPU)", "refused"}, seen  # fmt: skip
