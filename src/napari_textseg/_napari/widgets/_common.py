"""Small helpers shared by the dock widgets."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from napari_textseg._napari.workers import error_message

if TYPE_CHECKING:
    import napari


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


class _VerticalScroll(QScrollArea):
    """Scrolls vertically only: as wide as its content needs, as short as the screen allows."""

    def minimumSizeHint(self):  # Qt calls it by this name
        hint = super().minimumSizeHint()
        content = self.widget()
        if content is not None:
            hint.setWidth(
                content.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
            )
        return hint


def scroll_panel(panel: QWidget) -> QVBoxLayout:
    """The layout to fill for a dock panel, inside a scroll area: docked from the Plugins
    menu and stacked, the panels then fit a 1366 x 768 screen instead of forcing the
    window taller (napari remembers that size)."""
    content = QWidget()
    layout = QVBoxLayout(content)
    scroll = _VerticalScroll()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(content)
    outer = QVBoxLayout(panel)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    return layout


def working_line() -> QLabel:
    """A line saying what runs in the background, shown only while something does."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setObjectName("working")
    label.setVisible(False)
    return label


def show_working(label: QLabel, what: str) -> None:
    """``what`` is running ("" when nothing is)."""
    label.setText(f"working: {what} ..." if what else "")
    label.setVisible(bool(what))


def fit_combo(combo: QComboBox, characters: int = 14) -> None:
    """Let a combo box shrink to the panel's width; the full entry shows in its list and tooltip."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(characters)
    for i in range(combo.count()):
        combo.setItemData(i, combo.itemText(i), Qt.ItemDataRole.ToolTipRole)
    combo.view().setMinimumWidth(combo.view().sizeHintForColumn(0) + 20)


def hbox(*widgets: QWidget) -> QHBoxLayout:
    """The widgets side by side, for one form row."""
    layout = QHBoxLayout()
    for widget in widgets:
        layout.addWidget(widget)
    return layout


def fill_labels_combo(combo: QComboBox, viewer: napari.Viewer, first: str) -> None:
    """List the viewer's Labels layers (not the preview) after ``first``, keeping the choice."""
    from napari.layers import Labels

    from napari_textseg._napari.prompts_controller import PREVIEW_KEY

    current = combo.currentText()
    combo.clear()
    combo.addItem(first)
    for layer in viewer.layers:
        if isinstance(layer, Labels) and not layer.metadata.get(PREVIEW_KEY):
            combo.addItem(layer.name)
    if current:
        combo.setCurrentText(current)
