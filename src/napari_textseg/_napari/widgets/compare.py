"""The Compare with reference dock widget: per-label Dice, IoU, HD95 and NSD of two Labels layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from napari.utils import progress
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from napari_textseg._napari.layers import METADATA_KEY, label_table
from napari_textseg._napari.widgets._common import (
    fill_labels_combo,
    hbox,
    safely,
    scroll_panel,
    show_working,
    working_line,
)
from napari_textseg._napari.workers import panel_worker
from napari_textseg.core.errors import InputError
from napari_textseg.core.evaluation import MM_PER_UNIT, Evaluation, GridMismatch, iter_evaluate

if TYPE_CHECKING:
    import napari

__all__ = ["CompareWidget", "layer_grid_mismatch"]

_PICK = "<choose a Labels layer>"


def layer_grid_mismatch(pred: napari.layers.Labels, ref: napari.layers.Labels) -> str | None:
    """Why two Labels layers are not on one voxel grid, or ``None`` when they are."""
    if pred.data.shape != ref.data.shape:
        return f"{pred.name} is {pred.data.shape} voxels and {ref.name} {ref.data.shape}"
    if not np.allclose(pred.scale, ref.scale, rtol=1e-4):
        return f"voxel sizes differ: {pred.name} {tuple(pred.scale)} vs {ref.name} {tuple(ref.scale)}"
    if not np.allclose(pred.translate, ref.translate, atol=1e-3):
        return f"origins differ: {pred.name} {tuple(pred.translate)} vs {ref.name} {tuple(ref.translate)}"
    return None


def _unit(layer: napari.layers.Labels) -> str:
    unit = (layer.metadata.get(METADATA_KEY) or {}).get("unit", "mm")
    return unit if unit in MM_PER_UNIT else "mm"


class CompareWidget(QWidget):
    """Pick a prediction and a reference Labels layer; get the per-label metrics table."""

    COLUMNS = ("value", "name", "Dice", "IoU", "HD95", "NSD", "pred vol", "ref vol", "note")

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.report: Evaluation | None = None
        self._worker = None
        self.prediction, self.reference = QComboBox(), QComboBox()
        self.tolerance = QDoubleSpinBox()
        self.tolerance.setRange(0.0, 100.0)
        self.tolerance.setValue(2.0)
        self.instances = QCheckBox("instances (microscopy): F1 at IoU 0.5")
        self.run, self.cancel, self.save = QPushButton("Compare"), QPushButton("Cancel"), QPushButton("Save report ...")
        self.save.setEnabled(False)
        self.cancel.setEnabled(False)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.status = QLabel("Pick a prediction and a reference on the same grid, then Compare.")
        self.status.setWordWrap(True)
        self.status.setObjectName("status")
        self.working = working_line()

        form = QFormLayout()
        form.addRow("prediction", self.prediction)
        form.addRow("reference", self.reference)
        form.addRow("NSD tolerance", self.tolerance)
        form.addRow(self.instances)
        form.addRow(hbox(self.run, self.cancel, self.save))
        layout = scroll_panel(self)
        layout.addLayout(form)
        layout.addWidget(self.working)
        layout.addWidget(self.status)
        layout.addWidget(self.table)

        self.run.clicked.connect(safely(self.compare, self.status))
        self.cancel.clicked.connect(self._cancel)
        self.save.clicked.connect(safely(self._save_dialog, self.status))
        self.viewer.layers.events.inserted.connect(self._refresh)
        self.viewer.layers.events.removed.connect(self._refresh)
        self.reference.currentTextChanged.connect(self._show_unit)
        self._refresh()

    def _refresh(self, *_args: object) -> None:
        fill_labels_combo(self.prediction, self.viewer, _PICK)
        fill_labels_combo(self.reference, self.viewer, _PICK)

    def _show_unit(self, name: str) -> None:
        unit = _unit(self.viewer.layers[name]) if name in self.viewer.layers else "mm"
        self.tolerance.setSuffix(" um" if unit == "um" else " mm")

    def _layer(self, combo: QComboBox, role: str) -> napari.layers.Labels:
        name = combo.currentText()
        if name in ("", _PICK) or name not in self.viewer.layers:
            raise InputError(f"choose the {role} Labels layer")
        return self.viewer.layers[name]

    def compare(self) -> None:
        """Score the chosen layers in the background; the table fills when it is done."""
        if self._worker is not None:
            raise InputError("a comparison is already running")
        pred, ref = self._layer(self.prediction, "prediction"), self._layer(self.reference, "reference")
        why = layer_grid_mismatch(pred, ref)
        if why:
            raise GridMismatch(f"{why}; nothing is resampled: compare layers on the same grid")
        pred_names = label_table(pred.data, {"features": pred.features})[0]
        ref_names = label_table(ref.data, {"features": ref.features})[0]
        unit = _unit(ref)  # the tolerance box is in the reference layer's unit
        # Copies: the user may keep painting while the worker reads.
        steps = iter_evaluate(
            np.array(pred.data), np.array(ref.data), tuple(float(s) for s in ref.scale[-3:]), unit,
            names={**pred_names, **ref_names}, tolerance_mm=self.tolerance.value() * MM_PER_UNIT[unit],
            instances=self.instances.isChecked(), prediction=pred.name, reference_name=ref.name,
            pred_names=pred_names, ref_names=ref_names,
        )

        def work():
            return (yield from steps)

        bar = progress(total=0, desc="Comparing with reference")
        worker = panel_worker(work, lambda message: self.status.setText(f"error: {message}"))

        def advance(step: tuple[int, int]) -> None:
            bar.total = step[1]
            bar.update(step[0] - bar.n)

        def finished() -> None:
            bar.close()
            show_working(self.working, "")
            self._worker = None
            self.run.setEnabled(True)
            self.cancel.setEnabled(False)

        worker.yielded.connect(advance)
        worker.returned.connect(self._show)
        worker.finished.connect(finished)
        self._worker = worker
        self.run.setEnabled(False)
        self.cancel.setEnabled(True)
        show_working(self.working, f"comparing {pred.name} with {ref.name}")
        worker.start()

    def _cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self.status.setText("Comparison cancelled; the previous table is kept.")

    def _show(self, report: Evaluation) -> None:
        self.report = report
        self.save.setEnabled(True)
        if report.instances is not None:
            self.table.setRowCount(0)
            self.status.setText(report.table().splitlines()[-1])
            return
        self.table.setRowCount(len(report.rows))
        for i, row in enumerate(report.rows):
            hd = f"{row.hd95:.2f}" if np.isfinite(row.hd95) else "inf"
            cells = (row.value, row.name, f"{row.dice:.4f}", f"{row.iou:.4f}", hd, f"{row.nsd:.4f}",
                     f"{row.pred_volume:.3f}", f"{row.ref_volume:.3f}", "" if row.present == "both" else row.present)
            for j, cell in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(str(cell)))
        mean = report.mean()
        self.status.setText(
            f"{len(report.rows)} labels, matched by {report.matched_by}; mean Dice {mean.get('dice', float('nan')):.4f}, mean NSD@"
            f"{report.tolerance:g}{report.unit} {mean.get('nsd', float('nan')):.4f}; volumes in {report.volume_unit}"
        )

    def _save_dialog(self) -> None:
        if self.report is None:
            raise InputError("compare first, then save the report")
        path, _ = QFileDialog.getSaveFileName(self, "Save report", "report.csv", "CSV (*.csv);;JSON (*.json)")
        if path:
            self.status.setText(f"saved {self.report.write(path)}")
