"""Small helpers shared by the dock widgets."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error
from qtpy.QtWidgets import QHBoxLayout, QWidget

from napari_textseg.core.errors import NapariTextsegError

if TYPE_CHECKING:
    import napari
    from qtpy.QtWidgets import QComboBox


def safely(action: Callable[[], object]) -> Callable[..., None]:
    """Run ``action``; a user error becomes a notification, not a traceback."""

    def run(*_args: object) -> None:
        try:
            action()
        except (NapariTextsegError, ValueError, OSError) as err:
            show_error(str(err))

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
