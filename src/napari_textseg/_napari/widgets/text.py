"""The text section: organ names in, one named label map out (also a dock of its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QPlainTextEdit, QPushButton

from napari_textseg._napari.text_controller import text_controller_for
from napari_textseg._napari.widgets._common import fill_labels_combo, fit_combo, hbox
from napari_textseg._napari.widgets._section import Section
from napari_textseg._napari.widgets.download import DownloadButton
from napari_textseg._napari.wording import panel_wording
from napari_textseg.engine.text.backends import AUTO, BACKENDS
from napari_textseg.models.registry import CARDS

if TYPE_CHECKING:
    import napari

__all__ = ["TextLabellingWidget"]

_NEW_LAYER = "<new Labels layer>"
_LOCAL = "local open_clip file ..."


class TextLabellingWidget(Section):
    """Type "liver, spleen, left kidney"; get one named, non-overlapping Labels layer."""

    section = "text"
    hint = "Load a model, type organ names, press Label."

    def __init__(self, napari_viewer: napari.Viewer, *, scroll: bool = True):
        super().__init__(napari_viewer, scroll=scroll)
        self.controller = text_controller_for(napari_viewer)

        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("liver, spleen, left kidney\n(commas or one per line)")
        self.text.setMaximumHeight(80)
        self.backend = QComboBox()
        self.backend.addItem("auto (best installed)", AUTO)
        for info in BACKENDS.values():
            self.backend.addItem(info.title, info.id)
        self.backend.setToolTip(
            "auto: VoxTell, then Medical-SAM3 on a GPU, when installed with their weights; "
            "else CLIP + SAM, which needs no medical weights"
        )
        self.backend_note = QLabel()
        self.backend_note.setWordWrap(True)
        self.allow_cpu = QCheckBox("GPU backend on this CPU (slow)")
        self.allow_cpu.setToolTip(
            "run a backend that needs a CUDA GPU on this CPU anyway: minutes per organ"
        )
        self.clip = QComboBox()
        for card in CARDS.values():
            if card.family == "clip":
                self.clip.addItem(card.id, card.id)
        self.clip.addItem(_LOCAL, None)
        self.clip_file = QLineEdit()
        self.clip_file.setPlaceholderText("optional: a local open_clip checkpoint")
        self.target = QComboBox()
        self.any_name = QCheckBox("any name")
        self.any_name.setToolTip(
            "label free text as typed (CLIP reads any words); unticked, a name outside the "
            "organ vocabulary is refused with the organs it may mean"
        )
        self.use_clicks = QCheckBox("use my clicks or box")
        self.use_clicks.setToolTip(
            "the clicks or the box say where the (one) target is; CLIP is not needed"
        )
        self.run = QPushButton("Label")
        self.cancel_button = QPushButton("Cancel")
        self.download = DownloadButton(
            self.clip, self.status, panel_wording("CLIP file"), self.tasks, self.section
        )
        fit_combo(self.clip)
        fit_combo(self.backend)
        fit_combo(self.target)
        note = QLabel(
            "<i>Text alone with natural-image weights is unreliable on medical images; "
            "a click or a box (or medical weights) is the dependable path.</i>"
        )
        note.setWordWrap(True)

        self.form.addRow("targets", self.text)
        self.form.addRow(hbox(self.run, self.cancel_button))
        self.form.addRow("write to", self.target)
        self.form.addRow(hbox(self.use_clicks, self.any_name))
        self.form.addRow("backend", self.backend)
        self.form.addRow(self.backend_note)
        self.form.addRow(self.allow_cpu)
        self.form.addRow("CLIP", hbox(self.clip, self.download))
        self.form.addRow("CLIP file", self.clip_file)
        self.finish_layout(note)

        self.action(self.run, self._label)
        self.cancel_button.clicked.connect(self.cancel)
        self._refresh_targets()
        model = self.controller.settings  # the controls are views of this model
        for widget, name in (
            (self.text, "text"),
            (self.backend, "backend"),
            (self.allow_cpu, "allow_cpu"),
            (self.clip_file, "clip_file"),
            (self.use_clicks, "use_clicks"),
            (self.any_name, "allow_any_name"),
        ):
            self.bind(widget, model, name)
        self.bind(
            self.clip,
            model,
            "clip_model",
            to_model=lambda v: "" if v == _LOCAL else v,
            to_widget=lambda v: v or _LOCAL,
        )
        self.bind(
            self.target,
            model,
            "target_layer",
            to_model=lambda t: "" if t == _NEW_LAYER else t,
            to_widget=lambda v: v or _NEW_LAYER,
        )
        self.clear_on_change(
            self.text,
            self.backend,
            self.clip,
            self.clip_file,
            self.target,
            self.use_clicks,
            self.any_name,
        )
        self.listen(self.controller.workspace.busy, lambda busy: self.run.setEnabled(not busy))
        # The note follows every input of the plan: the settings, the model, the image.
        for name in ("backend", "use_clicks", "allow_cpu"):
            self.listen(getattr(model.events, name), self._explain_backend)
        self.listen(self.controller.workspace.model_ready, self._explain_backend)
        self.listen(self.viewer.layers.selection.events.active, self._explain_backend)
        self.listen(self.viewer.layers.events.inserted, self._explain_backend)
        self.listen(self.viewer.layers.events.removed, self._explain_backend)
        self._explain_backend()
        self.listen(self.viewer.layers.events.inserted, self._refresh_targets)
        self.listen(self.viewer.layers.events.removed, self._refresh_targets)
        self._refresh_targets()

    def cancelled_note(self) -> str:
        return "the organs already labelled are kept, the one in progress is not"

    def _label(self) -> None:
        self.controller.run()

    def _explain_backend(self, *_args: object) -> None:
        """Say what Label will run (the same plan Label follows), before the user presses it."""
        self.backend_note.setText(f"<i>{self.controller.plan().note()}</i>")

    def _refresh_targets(self, *_args: object) -> None:
        fill_labels_combo(self.target, self.viewer, _NEW_LAYER)
