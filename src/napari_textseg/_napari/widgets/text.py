"""The Text labelling dock widget: organ names in, one named label map out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from napari_textseg._napari.controller import ModelChoice
from napari_textseg._napari.text_controller import text_controller_for
from napari_textseg._napari.widgets._common import (
    fill_labels_combo,
    fit_combo,
    hbox,
    safely,
    scroll_panel,
    show_working,
    working_line,
)
from napari_textseg._napari.widgets.download import DownloadButton
from napari_textseg._napari.wording import panel_wording
from napari_textseg.models.registry import CARDS

if TYPE_CHECKING:
    import napari

__all__ = ["TextLabellingWidget"]

_NEW_LAYER = "<new Labels layer>"
_LOCAL = "local open_clip file ..."


class TextLabellingWidget(QWidget):
    """Type "liver, spleen, left kidney"; get one named, non-overlapping Labels layer."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.controller = text_controller_for(napari_viewer)
        self.setMaximumWidth(380)

        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("liver, spleen, left kidney\n(commas or one per line)")
        self.text.setMaximumHeight(80)
        self.clip = QComboBox()
        for card in CARDS.values():
            if card.family == "clip":
                self.clip.addItem(card.id, card.id)
        self.clip.addItem(_LOCAL, None)
        self.clip_file = QLineEdit()
        self.clip_file.setPlaceholderText("optional: a local open_clip checkpoint")
        self.target = QComboBox()
        self.use_clicks = QCheckBox("use my clicks (text + click: the click says where)")
        self.run = QPushButton("Label")
        self.cancel = QPushButton("Cancel")
        self.status = QLabel("Load a SAM/SAM2 model in Point prompts, type organ names, press Label.")
        self.status.setWordWrap(True)
        self.status.setObjectName("status")
        self.download = DownloadButton(self.clip, self.status, panel_wording("CLIP file"))
        self.working = working_line()
        fit_combo(self.clip)
        note = QLabel("<i>Text alone with natural-image weights is unreliable on medical images; "
                      "a click (or medical weights) is the dependable path.</i>")
        note.setWordWrap(True)

        form = QFormLayout()
        form.addRow("targets", self.text)
        form.addRow("CLIP model", hbox(self.clip, self.download))
        form.addRow("CLIP file", self.clip_file)
        form.addRow("write to", self.target)
        form.addRow(self.use_clicks)
        form.addRow(hbox(self.run, self.cancel))
        layout = scroll_panel(self)
        layout.addLayout(form)
        layout.addWidget(self.working)
        layout.addWidget(self.status)
        layout.addWidget(note)
        layout.addStretch(1)

        self.run.clicked.connect(safely(self._label, self.status))
        self.cancel.clicked.connect(self.controller.cancel)
        self.controller.status.connect(lambda message: self.status.setText(message))
        self.controller.points.busy.connect(lambda busy: self.run.setEnabled(not busy))
        self.controller.points.activity.connect(lambda what: show_working(self.working, what))
        self.viewer.layers.events.inserted.connect(self._refresh_targets)
        self.viewer.layers.events.removed.connect(self._refresh_targets)
        self._refresh_targets()

    def _label(self) -> None:
        target = self.target.currentText()
        clip_file = self.clip_file.text().strip() or None
        clip = ModelChoice(self.clip.currentData(), clip_file)
        self.controller.label(self.text.toPlainText(), None if target == _NEW_LAYER else target, clip,
                              use_clicks=self.use_clicks.isChecked())

    def _refresh_targets(self, *_args: object) -> None:
        fill_labels_combo(self.target, self.viewer, _NEW_LAYER)
