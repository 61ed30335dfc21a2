"""The Point prompts dock widget: model, clicks, segment, commit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from napari_textseg._napari.controller import ModelChoice, controller_for
from napari_textseg._napari.prompt_layer import toggle_sign
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
from napari_textseg.models.registry import CARDS, DEFAULT_MODEL, real_image_warning

if TYPE_CHECKING:
    import napari

__all__ = ["PointPromptsWidget"]

_NEW_LAYER = "<new Labels layer>"
_LOCAL = "local checkpoint file ..."


class PointPromptsWidget(QWidget):
    """Click positive/negative points, segment the slice (S), commit the object (C)."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.controller = controller_for(napari_viewer)
        self.setMaximumWidth(380)

        self.model = QComboBox()
        # The default first: LiteMedSAM, installed with the plugin, trained on medical images.
        for card in sorted(CARDS.values(), key=lambda c: c.id != DEFAULT_MODEL):
            if card.family in ("litemedsam", "sam", "sam2"):
                note = card.family + (", phantom: not for real images" if "phantom" in card.tags else "")
                if card.box_only:
                    note = "boxes, installed"
                self.model.addItem(f"{card.id}  ({note})", card.id)
        self.model.addItem(_LOCAL, None)
        self.checkpoint = QLineEdit()
        self.checkpoint.setPlaceholderText("optional: a local .pth/.pt file")
        browse = QPushButton("...")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        self.load = QPushButton("Load model")
        self.licence = QLabel("")
        self.licence.setWordWrap(True)
        self.licence.setObjectName("licence")

        self.segment = QPushButton("Segment slice [S]")
        self.commit = QPushButton("Commit [C]")
        self.new = QPushButton("New object")
        self.cancel = QPushButton("Cancel")
        self.toggle = QPushButton("Toggle +/- [T]")
        self.box = QPushButton("Box [B]")
        self.box.setToolTip("draw a box on the current slice (a rectangle), then S; box models need one")
        self.points = QPushButton("Points [P]")
        self.points.setToolTip("click points on the object (T toggles positive/negative), then S")
        self.target = QComboBox()
        self.value = QSpinBox()
        self.value.setRange(0, 65535)
        self.value.setSpecialValueText("next free")
        self.name = QLineEdit("object")
        self.preserve = QCheckBox("keep existing labels")
        self.preserve.setChecked(True)
        self.status = QLabel("Choose a model and press Load.")
        self.status.setWordWrap(True)
        self.status.setObjectName("status")
        self.download = DownloadButton(self.model, self.status, panel_wording("checkpoint"))
        self.working = working_line()
        fit_combo(self.model)

        form = QFormLayout()
        form.addRow("model", self.model)
        form.addRow("checkpoint", hbox(self.checkpoint, browse))
        form.addRow("device", self.device)
        form.addRow(hbox(self.load, self.download))
        form.addRow(self.licence)
        form.addRow(hbox(self.box, self.points, self.toggle))
        form.addRow(self.segment)
        form.addRow("commit to", self.target)
        form.addRow("label value", self.value)
        form.addRow("label name", self.name)
        form.addRow(self.preserve)
        form.addRow(hbox(self.commit, self.new, self.cancel))
        layout = scroll_panel(self)
        layout.addLayout(form)
        layout.addWidget(self.working)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.load.clicked.connect(safely(self._load, self.status))
        self.segment.clicked.connect(safely(self.controller.segment_slice, self.status))
        self.commit.clicked.connect(safely(self._commit, self.status))
        self.new.clicked.connect(safely(self.controller.new_object, self.status))
        self.cancel.clicked.connect(self.controller.cancel)
        self.toggle.clicked.connect(safely(self._toggle, self.status))
        self.box.clicked.connect(safely(self._box_tool, self.status))
        self.points.clicked.connect(safely(self._point_tool, self.status))
        self.controller.model_ready.connect(self._ready)
        self.model.currentIndexChanged.connect(self._show_licence)
        self.controller.status.connect(lambda message: self.status.setText(message))
        self.controller.busy.connect(lambda busy: self.segment.setEnabled(not busy))
        self.controller.activity.connect(lambda what: show_working(self.working, what))
        self.viewer.layers.events.inserted.connect(self._refresh_targets)
        self.viewer.layers.events.removed.connect(self._refresh_targets)
        self._refresh_targets()
        self._show_licence()
        self._bind_keys()

    def _key_actions(self) -> dict:
        # micro-sam's keys: S segments the slice, Shift+S the volume, C commits, T toggles;
        # B draws a box, P goes back to clicking.
        return {"s": self.controller.segment_slice, "Shift-s": self.controller.propagate,
                "c": self._commit, "t": self._toggle, "b": self._box_tool, "p": self._point_tool}

    def _bind_keys(self) -> None:
        for key, action in self._key_actions().items():
            self.viewer.bind_key(key, lambda _viewer, act=action: safely(act, self.status)(), overwrite=True)

    def bind_prompt_layer_keys(self, layer: napari.layers.Layer) -> None:
        """The same keys on the prompt layers, whose own S would switch to select mode."""
        for key, action in self._key_actions().items():
            layer.bind_key(key, lambda _layer, act=action: safely(act, self.status)(), overwrite=True)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint", "", "Checkpoints (*.pt *.pth *.bin *.safetensors)")
        if path:
            self.checkpoint.setText(path)

    def _show_licence(self) -> None:
        model_id = self.model.currentData()
        if model_id is None:
            self.licence.setText("A local file: its architecture is recognised from its contents.")
            return
        card = CARDS[model_id]
        origin = f" Weights: {card.source}." if card.package else ""
        self.licence.setText(f"{card.title}. Licence: {card.license} ({card.license_url}).{origin}")

    def _load(self) -> None:
        checkpoint = self.checkpoint.text().strip() or None
        model_id = self.model.currentData()
        if model_id is None and checkpoint is None:
            raise ValueError("choose a model, or give a local checkpoint file")
        device = self.device.currentText()
        self.controller.load_model(ModelChoice(model_id, checkpoint, None if device == "auto" else device))
        if self._has_image():
            self.bind_prompt_layer_keys(self.controller.boxes_layer())
            self.bind_prompt_layer_keys(self.controller.prompts_layer())

    def _ready(self, card) -> None:
        """A box model is ready: the box tool is what the user needs next. A phantom model
        on a real image says it will not work there."""
        if not self._has_image():
            return
        self._box_tool() if card.box_only else self._point_tool()
        hint = ". Draw a box (B), then S; Shift+S for 3-D" if card.box_only else ". Click the object, then S"
        warning = real_image_warning(card, self.controller.current_image().name)
        self.status.setText(self.status.text() + hint + (f". Warning: {warning}" if warning else ""))

    def _box_tool(self) -> None:
        self.bind_prompt_layer_keys(self.controller.box_tool())

    def _point_tool(self) -> None:
        self.bind_prompt_layer_keys(self.controller.point_tool())

    def _has_image(self) -> bool:
        from napari.layers import Image

        return any(isinstance(la, Image) and la.ndim == 3 for la in self.viewer.layers)

    def _toggle(self) -> None:
        sign = toggle_sign(self.controller.prompts_layer())
        self.status.setText(f"new clicks are {sign}")

    def _commit(self) -> None:
        target = self.target.currentText()
        self.controller.target.layer = None if target == _NEW_LAYER else target
        self.controller.target.value = self.value.value() or None
        self.controller.target.name = self.name.text().strip() or "object"
        self.controller.target.preserve_existing = self.preserve.isChecked()
        layer = self.controller.commit()
        if layer is not None:
            self._refresh_targets()
            self.target.setCurrentText(layer.name)

    def _refresh_targets(self, *_args: object) -> None:
        fill_labels_combo(self.target, self.viewer, _NEW_LAYER)
