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
from napari_textseg.engine.text.registry import AUTO, BACKENDS, choose_backend, why_unavailable
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
        self.backend = QComboBox()
        self.backend.addItem("auto (best installed)", AUTO)
        for info in BACKENDS.values():
            self.backend.addItem(info.title, info.id)
        self.backend.setToolTip("auto: VoxTell, then Medical-SAM3 on a GPU, when installed with their weights; "
                                "else CLIP + SAM, which needs no medical weights")
        self.backend_note = QLabel()
        self.backend_note.setWordWrap(True)
        self.allow_cpu = QCheckBox("run a GPU backend on this CPU anyway (slow)")
        self.clip = QComboBox()
        for card in CARDS.values():
            if card.family == "clip":
                self.clip.addItem(card.id, card.id)
        self.clip.addItem(_LOCAL, None)
        self.clip_file = QLineEdit()
        self.clip_file.setPlaceholderText("optional: a local open_clip checkpoint")
        self.target = QComboBox()
        self.use_clicks = QCheckBox("use my clicks or box (the prompt says where)")
        self.run = QPushButton("Label")
        self.cancel = QPushButton("Cancel")
        self.status = QLabel("Load a model in Point prompts, type organ names, press Label.")
        self.status.setWordWrap(True)
        self.status.setObjectName("status")
        self.download = DownloadButton(self.clip, self.status, panel_wording("CLIP file"))
        self.working = working_line()
        fit_combo(self.clip)
        note = QLabel("<i>Text alone with natural-image weights is unreliable on medical images; "
                      "a click or a box (or medical weights) is the dependable path.</i>")
        note.setWordWrap(True)

        form = QFormLayout()
        form.addRow("targets", self.text)
        form.addRow("backend", self.backend)
        form.addRow(self.backend_note)
        form.addRow(self.allow_cpu)
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

        self.backend.currentIndexChanged.connect(self._explain_backend)
        self.viewer.layers.selection.events.active.connect(self._explain_backend)
        self._explain_backend()
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
                              use_clicks=self.use_clicks.isChecked(), backend=self.backend.currentData(),
                              allow_cpu=self.allow_cpu.isChecked())

    def _explain_backend(self, *_args: object) -> None:
        """Say what the chosen backend needs here, before the user presses Label."""
        from napari_textseg._napari.layers import layer_modality
        from napari_textseg.models.device import pick_device

        backend = self.backend.currentData()
        image = next((layer for layer in reversed(self.viewer.layers) if layer._type_string == "image"), None)
        modality = layer_modality({"metadata": image.metadata}) if image is not None else "CT"
        device = pick_device(None).type
        if backend == AUTO:
            text = f"auto will run: {BACKENDS[choose_backend(AUTO, modality, device)].title}"
        else:
            text = why_unavailable(backend, modality, device, allow_cpu=self.allow_cpu.isChecked()) or "ready"
        if backend in (AUTO, "clip-sam"):
            text += " (CLIP + SAM uses the model of Point prompts and the CLIP model below)"
        self.backend_note.setText(f"<i>{text}</i>")

    def _refresh_targets(self, *_args: object) -> None:
        fill_labels_combo(self.target, self.viewer, _NEW_LAYER)
