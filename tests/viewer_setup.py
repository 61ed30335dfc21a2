"""A viewer with a volume, the plugin's panels docked and a tiny model loaded."""

from __future__ import annotations

from conftest import HANG_MS
from napari_textseg._napari.controller import ModelChoice, controller_for


def viewer_with_model(make_viewer, qtbot, image_path, panels, model_id, checkpoint):
    """(viewer, controller, [panel widgets]) once the model is ready."""
    viewer = make_viewer()
    viewer.open(str(image_path), plugin="napari-textseg")
    widgets = [viewer.window.add_plugin_dock_widget("napari-textseg", name)[1] for name in panels]
    controller = controller_for(viewer)
    with qtbot.waitSignal(controller.model_ready, timeout=HANG_MS):
        controller.load_model(ModelChoice(model_id, str(checkpoint), "cpu"))
    return viewer, controller, widgets
