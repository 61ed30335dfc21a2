"""Small helpers shared by the dock widgets."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error
from qtpy.QtWidgets import QHBoxLayout, QLabel, QWidget

from napari_textseg._napari.workers import error_message

if TYPE_CHECKING:
    import napari
    from qtpy.QtWidgets import QComboBox


def safely(action: Callable[[], object], status: QLabel | None = None) -> Callable[..., None]:
    """Run ``action``; a failure becomes one line in the panel's ``status`` line (or a
    notification, for panels without one), never a traceback: that goes to the log."""

    def run(*_args: object) -> None:
        try:
            action()
        except Exception as err:  # a Qt slot must not raise: without napari.run() it aborts
            message = error_message(err)
            if status is None:
                show_error(message)
            else:
                status.setText(f"error: {message}")

    return run


def hbox(*widgets: QWidget) -> QHBoxLayout:
    """The widgets side by side, for one form row."""
    layout = QHBoxLayout()
    for widget in widgets:
        layout.addWidget(widget)
    return layout


def fill_labels_combo(combo: QComboBox, viewer: napari.Viewer, first: str) -> None:
    """List the viewer's Labels layers (not the preview) after ``first``, keeping the choice."""
    from napari.layers import Labels

    from napari_textseg._napari.controller import PREVIEW_LAYER

    current = combo.currentText()
    combo.clear()
    combo.addItem(first)
    for layer in viewer.layers:
        if isinstance(layer, Labels) and layer.name != PREVIEW_LAYER:
            combo.addItem(layer.name)
    if current:
        combo.setCurrentText(current)
