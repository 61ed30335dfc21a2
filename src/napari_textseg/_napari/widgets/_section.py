"""The base of every panel section: a form, its own status line, and the viewer's task runner.

A section is a thin view: it gathers input into a form, starts work through the
viewer's :class:`~napari_textseg._napari.tasks.TaskRunner` under its own name, and shows
the messages of that work (and only that work) in its status line. The status is cleared
when the section's inputs change, so it never describes an older request. A section can
be a dock of its own or a tab of the TextSeg panel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from napari_textseg._napari.tasks import tasks_for
from napari_textseg._napari.widgets._common import safely, scroll_panel, show_working, working_line

if TYPE_CHECKING:
    import napari

__all__ = ["Section"]

PANEL_WIDTH = (
    380  # px: the width napari gives a dock on a 1366 px screen without squeezing the canvas
)


class Section(QWidget):
    """A panel section named ``section`` (one of :data:`~napari_textseg._napari.tasks.SECTIONS`)."""

    section = ""
    hint = ""  # the status line before anything ran

    def __init__(self, napari_viewer: napari.Viewer, *, scroll: bool = True):
        super().__init__()
        self.viewer = napari_viewer
        self.tasks = tasks_for(napari_viewer)
        self.setMaximumWidth(PANEL_WIDTH)
        self.form = QFormLayout()
        # A label too long for its row goes above its field: nothing is cut at the right edge.
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.status = QLabel(self.hint)
        self.status.setWordWrap(True)
        self.status.setObjectName("status")
        self.working = working_line()
        if scroll:
            self.layout_ = scroll_panel(self)
        else:
            self.layout_ = QVBoxLayout(self)
            self.layout_.setContentsMargins(0, 0, 0, 0)
        self._slots: list[tuple[object, Callable]] = []
        self.listen(self.tasks.message, self._on_message)
        self.listen(self.tasks.changed, self._on_changed)

    # -- wiring ---------------------------------------------------------------------

    def listen(self, signal, slot: Callable) -> None:
        """Connect ``slot`` to a psygnal ``signal`` until this widget is deleted: a task that
        ends after the panel closed must not write into a deleted Qt label."""
        signal.connect(slot)
        self._slots.append((signal, slot))
        if len(self._slots) == 1:
            slots = self._slots

            def disconnect_all(
                *_args: object,
            ) -> None:  # no reference to self: Qt calls it while deleting
                for connected, callback in slots:
                    connected.disconnect(callback)
                slots.clear()

            self.destroyed.connect(disconnect_all)

    def finish_layout(self, *extra: QWidget, stretch: bool = True) -> None:
        """The form, then ``extra`` widgets, the working line and the status line."""
        self.layout_.addLayout(self.form)
        for widget in extra:
            self.layout_.addWidget(widget)
        self.layout_.addWidget(self.working)
        self.layout_.addWidget(self.status)
        if stretch:
            self.layout_.addStretch(1)

    def action(self, button: QAbstractButton, run: Callable[[], object]) -> None:
        """``button`` runs ``run``; a failure is one line in this section's status."""
        button.clicked.connect(safely(run, self.status))

    def bind(
        self,
        widget: QWidget,
        model: object,
        name: str,
        *,
        to_model: Callable = lambda v: v,
        to_widget: Callable = lambda v: v,
    ) -> None:
        """Two-way: ``widget`` shows ``model.<name>`` (an evented model) and edits it.

        A combo box stores its item's data when it has some, else its text; ``to_model``
        and ``to_widget`` convert where the two differ (an entry such as "<none>" for "").
        """
        get, put, changed = _accessors(widget)

        def widget_changed(*_args: object) -> None:
            setattr(model, name, to_model(get()))

        def model_changed(value: object) -> None:
            if to_model(get()) != value:
                widget.blockSignals(True)
                try:
                    put(to_widget(value))
                finally:
                    widget.blockSignals(False)

        model_changed(getattr(model, name))
        widget_changed()
        changed.connect(widget_changed)
        self.listen(getattr(model.events, name), model_changed)  # type: ignore[attr-defined]

    def clear_on_change(self, *inputs: QWidget) -> None:
        """The user changing any of ``inputs`` clears the status: it spoke of the previous
        input. (User signals only: a list refilled because a layer was added is no change.)"""
        for widget in inputs:
            for name in ("activated", "textEdited", "clicked", "valueChanged", "textChanged"):
                signal = getattr(widget, name, None)
                if signal is not None:
                    signal.connect(self.clear_status)
                    break

    def clear_status(self, *_args: object) -> None:
        if not self.status.text().startswith("working"):
            self.status.setText("")

    def say(self, text: str) -> None:
        """One line in this section's status (also what the task runner routes here)."""
        self.tasks.message.emit(self.section, text)

    def cancel(self) -> None:
        """Stop this section's own work; the other sections' work goes on."""
        if self.tasks.cancel(self.section):
            self.say("cancelled; " + self.cancelled_note())

    def cancelled_note(self) -> str:
        return "nothing was changed"

    # -- task runner ------------------------------------------------------------------

    def _on_message(self, section: str, text: str) -> None:
        if section == self.section:
            self.status.setText(text)

    def _on_changed(self, _section: str, _what: str) -> None:
        show_working(self.working, self.tasks.activity() or self.tasks.activity(self.section))


def _accessors(widget: QWidget) -> tuple[Callable, Callable, object]:
    """(read, write, changed signal) of an input widget."""
    if isinstance(widget, QAbstractButton):
        return widget.isChecked, widget.setChecked, widget.toggled
    if isinstance(widget, QAbstractSpinBox):
        return widget.value, widget.setValue, widget.valueChanged  # type: ignore[attr-defined]
    if isinstance(widget, QLineEdit):
        return widget.text, widget.setText, widget.textChanged
    if isinstance(widget, QPlainTextEdit):
        return widget.toPlainText, widget.setPlainText, widget.textChanged
    if isinstance(widget, QComboBox):

        def read() -> object:
            data = widget.currentData()
            return widget.currentText() if data is None else data

        def write(value: object) -> None:
            index = widget.findData(value)
            widget.setCurrentIndex(index if index >= 0 else max(widget.findText(str(value)), 0))

        return read, write, widget.currentIndexChanged
    raise TypeError(f"cannot bind a {type(widget).__name__}")
