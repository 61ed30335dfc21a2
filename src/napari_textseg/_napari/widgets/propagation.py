"""The Propagation dock widget: memory bank, direction, stop rule, ROI mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from napari_textseg._napari.controller import controller_for
from napari_textseg._napari.widgets._common import (
    fill_labels_combo,
    hbox,
    safely,
    scroll_panel,
    show_working,
    working_line,
)
from napari_textseg.engine.interactive.propagate import DIRECTIONS, PROJECTIONS, PropagationSettings
from napari_textseg.engine.interactive.session import PostProcessing

if TYPE_CHECKING:
    import napari

__all__ = ["PropagationWidget"]

_NONE = "<none>"


class PropagationWidget(QWidget):
    """Propagate the prompted object through the volume (Shift+S)."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.controller = controller_for(napari_viewer)
        self.setMaximumWidth(380)

        defaults = PropagationSettings()  # the command line's defaults too
        self.memory_size = QSpinBox()
        self.memory_size.setRange(1, 6)  # SAM2's trained temporal encodings: 6 past memories
        self.memory_size.setValue(defaults.memory_size)
        self.policy = QComboBox()
        self.policy.addItems(["fifo", "ranked"])
        self.policy.setCurrentText(defaults.policy)
        self.policy.setToolTip("fifo: SAM2's own (most recent). ranked: CRISP-SAM2 (IoU gate 0.6, "
                               "evict the least typical memory)")
        self.projection = QComboBox()
        self.projection.addItems(list(PROJECTIONS))
        self.projection.setCurrentText(defaults.projection)
        self.projection.setToolTip("SAM models: prompt each slice with its neighbour's deepest point and box, "
                                   "or the point alone (no box to take in an adjacent organ)")
        self.offload = QCheckBox("keep memories in host RAM")
        self.direction = QComboBox()
        self.direction.addItems(list(DIRECTIONS))
        self.direction.setCurrentText(defaults.direction)
        self.empty_stop = QSpinBox()
        self.empty_stop.setRange(0, 50)
        self.empty_stop.setValue(defaults.empty_stop)
        self.empty_stop.setSpecialValueText("never")
        self.use_range = QCheckBox("limit to slices")
        self.lo = QSpinBox()
        self.hi = QSpinBox()
        for box in (self.lo, self.hi):
            box.setRange(0, 100_000)
        self.hi.setValue(100_000)
        self.roi_mm = QDoubleSpinBox()
        self.roi_mm.setRange(0, 1000)
        self.roi_mm.setSuffix(" mm")
        self.roi_mm.setSpecialValueText("off")
        self.confine = QComboBox()
        self.confine_values = QLineEdit()
        self.confine_values.setPlaceholderText("label values, e.g. 5 (empty: any)")
        self.fill_holes = QCheckBox("fill holes")
        self.keep_clicked = QCheckBox("keep only clicked parts")
        self.run = QPushButton("Propagate [Shift+S]")
        self.cancel = QPushButton("Cancel")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.working = working_line()

        form = QFormLayout()
        form.addRow("memory bank size", self.memory_size)
        form.addRow("memory policy", self.policy)
        form.addRow(self.offload)
        form.addRow("SAM projection", self.projection)
        form.addRow("direction", self.direction)
        form.addRow("stop after empty slices", self.empty_stop)
        form.addRow(hbox(self.use_range, self.lo, QLabel("to"), self.hi))
        form.addRow("tumour ROI", self.roi_mm)
        form.addRow("confine to", self.confine)
        form.addRow("", self.confine_values)
        form.addRow(self.fill_holes)
        form.addRow(self.keep_clicked)
        layout = scroll_panel(self)
        layout.addLayout(form)
        layout.addLayout(hbox(self.run, self.cancel))
        layout.addWidget(self.working)
        layout.addWidget(self.status)
        layout.addStretch(1)

        # Every change goes to the controller at once, so Shift+S uses what is shown.
        for spin in (self.memory_size, self.empty_stop, self.lo, self.hi, self.roi_mm):
            spin.valueChanged.connect(safely(self.apply, self.status))
        for combo in (self.policy, self.projection, self.direction, self.confine):
            combo.currentIndexChanged.connect(safely(self.apply, self.status))
        for check in (self.offload, self.use_range, self.fill_holes, self.keep_clicked):
            check.toggled.connect(safely(self.apply, self.status))
        self.confine_values.textChanged.connect(safely(self.apply, self.status))
        self.run.clicked.connect(safely(self._propagate, self.status))
        self.cancel.clicked.connect(self.controller.cancel)
        self.controller.busy.connect(lambda busy: self.run.setEnabled(not busy))
        self.controller.activity.connect(lambda what: show_working(self.working, what))
        self.controller.status.connect(lambda message: self.status.setText(message))
        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self._refresh_layers()

    def apply(self) -> None:
        """Copy the controls into the controller (also done before each propagation)."""
        try:
            values = tuple(int(v) for v in self.confine_values.text().replace(",", " ").split())
        except ValueError:
            raise ValueError("confine label values must be whole numbers, e.g. 5 or 2, 3") from None
        confine = self.confine.currentText()
        self.controller.settings = PropagationSettings(
            direction=self.direction.currentText(),
            memory_size=self.memory_size.value(),
            policy=self.policy.currentText(),
            empty_stop=self.empty_stop.value(),
            slice_range=(self.lo.value(), self.hi.value()) if self.use_range.isChecked() else None,
            offload=self.offload.isChecked(),
            projection=self.projection.currentText(),
        )
        self.controller.options.roi_mm = self.roi_mm.value() or None
        self.controller.options.confine_layer = None if confine in ("", _NONE) else confine
        self.controller.options.confine_values = values
        self.controller.post = PostProcessing(self.fill_holes.isChecked(), self.keep_clicked.isChecked())

    def _propagate(self) -> None:
        self.apply()
        self.controller.propagate()

    def _refresh_layers(self, *_args: object) -> None:
        fill_labels_combo(self.confine, self.viewer, _NONE)
