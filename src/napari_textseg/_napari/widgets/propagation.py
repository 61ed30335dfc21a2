"""The propagation section: memory bank, direction, stop rule, ROI mode (also a dock of its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
)

from napari_textseg._napari.prompts_controller import controller_for
from napari_textseg._napari.widgets._common import fill_labels_combo, hbox
from napari_textseg._napari.widgets._section import Section
from napari_textseg.engine.interactive.memory import POLICIES
from napari_textseg.engine.interactive.propagate import DIRECTIONS, MAX_MEMORY, PROJECTIONS

if TYPE_CHECKING:
    import napari

__all__ = ["PropagationWidget"]

_NONE = "<none>"


class PropagationWidget(Section):
    """Propagate the prompted object through the volume (Shift+S)."""

    section = "propagation"

    def __init__(self, napari_viewer: napari.Viewer, *, scroll: bool = True):
        super().__init__(napari_viewer, scroll=scroll)
        self.controller = controller_for(napari_viewer)

        self.memory_size = QSpinBox()
        self.memory_size.setRange(1, MAX_MEMORY)  # SAM2's trained temporal encodings
        self.policy = QComboBox()
        self.policy.addItems(list(POLICIES))
        self.policy.setToolTip(
            "fifo: SAM2's own (most recent). ranked: CRISP-SAM2 (IoU gate 0.6, "
            "evict the least typical memory)"
        )
        self.projection = QComboBox()
        self.projection.addItems(list(PROJECTIONS))
        self.projection.setToolTip(
            "SAM models: prompt each slice with its neighbour's deepest point and box, "
            "or the point alone (no box to take in an adjacent organ)"
        )
        self.offload = QCheckBox("keep memories in host RAM")
        self.direction = QComboBox()
        self.direction.addItems(list(DIRECTIONS))
        self.empty_stop = QSpinBox()
        self.empty_stop.setRange(0, 50)
        self.empty_stop.setSpecialValueText("never")
        self.empty_stop.setSuffix(" empty slices")
        self.use_range = QCheckBox("only slices")
        self.lo = QSpinBox()
        self.hi = QSpinBox()
        for box in (self.lo, self.hi):
            box.setRange(
                0, 9_999
            )  # four digits: what fits the panel; the engine clips to the volume
            box.setMaximumWidth(96)
        self.roi_mm = QDoubleSpinBox()
        self.roi_mm.setRange(0, 1000)
        self.roi_mm.setSuffix(" mm")
        self.roi_mm.setSpecialValueText("off")
        self.roi_mm.setToolTip(
            "clicks: the model sees only a cube of this size around them (small lesions)"
        )
        self.roi_box = QCheckBox("crop to 3x box")
        self.roi_box.setToolTip(
            "boxes: every slice is cropped to 3x the box (at least 64 px) around it, so a "
            "small lesion fills the model's input; off by default (docs/segmentation.md)"
        )
        self.confine = QComboBox()
        self.confine_values = QLineEdit()
        self.confine_values.setPlaceholderText("label values, e.g. 5 (empty: any)")
        self.fill_holes = QCheckBox("fill holes")
        self.keep_clicked = QCheckBox("keep only clicked parts")
        self.run = QPushButton("Propagate [Shift+S]")
        self.cancel_button = QPushButton("Cancel")

        # The action first: at 1366 x 768 it stays in view above the settings.
        self.form.addRow(hbox(self.run, self.cancel_button))
        self.form.addRow("memory size", self.memory_size)
        self.form.addRow("memory policy", self.policy)
        self.form.addRow(self.offload)
        self.form.addRow("projection", self.projection)
        self.form.addRow("direction", self.direction)
        self.form.addRow("stop after", self.empty_stop)
        self.form.addRow(self.use_range, hbox(self.lo, QLabel("to"), self.hi))
        self.form.addRow("tumour ROI", hbox(self.roi_mm, self.roi_box))
        self.form.addRow("confine to", self.confine)
        self.form.addRow("", self.confine_values)
        self.form.addRow(self.fill_holes)
        self.form.addRow(self.keep_clicked)
        self.finish_layout()

        # The controls are views of the controller's model: Shift+S uses what is shown.
        self._refresh_layers()
        model = self.controller.settings.propagation
        for widget, name in (
            (self.memory_size, "memory_size"),
            (self.policy, "policy"),
            (self.offload, "offload"),
            (self.projection, "projection"),
            (self.direction, "direction"),
            (self.empty_stop, "empty_stop"),
            (self.use_range, "use_range"),
            (self.lo, "first"),
            (self.hi, "last"),
            (self.roi_mm, "roi_mm"),
            (self.roi_box, "roi_box"),
            (self.confine_values, "confine_values"),
            (self.fill_holes, "fill_holes"),
            (self.keep_clicked, "keep_clicked"),
        ):
            self.bind(widget, model, name)
        self.bind(
            self.confine,
            model,
            "confine_layer",
            to_model=lambda t: "" if t == _NONE else t,
            to_widget=lambda v: v or _NONE,
        )
        inputs = (
            self.memory_size,
            self.empty_stop,
            self.lo,
            self.hi,
            self.roi_mm,
            self.policy,
            self.projection,
            self.direction,
            self.confine,
            self.offload,
            self.use_range,
            self.fill_holes,
            self.keep_clicked,
            self.confine_values,
            self.roi_box,
        )
        self.clear_on_change(*inputs)
        self.action(self.run, self._propagate)
        self.cancel_button.clicked.connect(self.cancel)
        self.listen(self.controller.workspace.busy, lambda busy: self.run.setEnabled(not busy))
        self.listen(self.controller.workspace.model_ready, self._model_ready)
        self.listen(self.viewer.layers.events.inserted, self._refresh_layers)
        self.listen(self.viewer.layers.events.removed, self._refresh_layers)
        self._refresh_layers()

    def cancelled_note(self) -> str:
        return "the object is as it was before propagating"

    def _model_ready(self, card) -> None:
        """Settings the loaded model cannot use are greyed out: the memory bank is SAM2's,
        prompt projection SAM (v1)'s."""
        for widget in (self.memory_size, self.policy, self.offload):
            widget.setEnabled(card.family == "sam2")
            widget.setToolTip(
                "" if card.family == "sam2" else f"SAM2 only: {card.name} has no memory bank"
            )
        self.projection.setEnabled(card.family == "sam")

    def _propagate(self) -> None:
        self.controller.propagate(section=self.section)

    def _refresh_layers(self, *_args: object) -> None:
        fill_labels_combo(self.confine, self.viewer, _NONE)
