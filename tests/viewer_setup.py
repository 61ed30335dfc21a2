"""A viewer with a volume, the plugin's panels docked and a tiny model loaded."""

from __future__ import annotations

from conftest import HANG_MS
from napari_textseg._napari.model_controller import model_controller_for
from napari_textseg._napari.prompts_controller import controller_for
from napari_textseg._napari.settings import ModelChoice


def viewer_with_model(make_viewer, qtbot, image_path, panels, model_id, checkpoint):
    """(viewer, controller, [panel widgets]) once the model is ready."""
    viewer = make_viewer()
    viewer.open(str(image_path), plugin="napari-textseg")
    widgets = [viewer.window.add_plugin_dock_widget("napari-textseg", name)[1] for name in panels]
    controller = controller_for(viewer)
    with qtbot.waitSignal(controller.workspace.model_ready, timeout=HANG_MS):
        model_controller_for(controller.viewer).load_model(
            ModelChoice(model_id, str(checkpoint), "cpu")
        )
    return viewer, controller, widgets
