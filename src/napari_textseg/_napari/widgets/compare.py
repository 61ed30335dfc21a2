"""The compare section: per-label Dice, IoU, HD95 and NSD of two Labels layers (also a dock)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
)

from napari_textseg._napari.compare_controller import compare_controller_for, layer_unit
from napari_textseg._napari.widgets._common import fill_labels_combo, fit_combo, hbox
from napari_textseg._napari.widgets._section import Section
from napari_textseg.core.errors import InputError
from napari_textseg.core.evaluation import Evaluation

if TYPE_CHECKING:
    import napari

__all__ = ["CompareWidget"]

_PICK = "<choose a Labels layer>"


class CompareWidget(Section):
    """Pick a prediction and a reference Labels layer; get the per-label metrics table."""

    section = "compare"
    hint = "Pick a prediction and a reference on the same grid, then Compare."
    # The note ("prediction only", "reference only") explains a Dice of 0: it comes third.
    COLUMNS = ("name", "Dice", "note", "NSD", "HD95", "IoU", "pred vol", "ref vol", "value")

    def __init__(self, napari_viewer: napari.Viewer, *, scroll: bool = True):
        super().__init__(napari_viewer, scroll=scroll)
        self.controller = compare_controller_for(napari_viewer)
        self.report: Evaluation | None = None
        self.prediction, self.reference = QComboBox(), QComboBox()
        for combo in (self.prediction, self.reference):
            fit_combo(combo)
        self.tolerance = QDoubleSpinBox()
        self.tolerance.setRange(0.0, 100.0)
        self.tolerance.setValue(2.0)
        self.instances = QCheckBox("instances (microscopy): F1 at IoU 0.5")
        self.run, self.cancel_button, self.save = (
            QPushButton("Compare"),
            QPushButton("Cancel"),
            QPushButton("Save ..."),
        )
        self.save.setToolTip("save the report as CSV or JSON")
        self.save.setEnabled(False)
        self.cancel_button.setEnabled(False)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(160)

        self.form.addRow("prediction", self.prediction)
        self.form.addRow("reference", self.reference)
        self.form.addRow("NSD tolerance", self.tolerance)
        self.form.addRow(self.instances)
        self.form.addRow(hbox(self.run, self.cancel_button, self.save))
        self.finish_layout(self.table, stretch=False)

        self.action(self.run, self.compare)
        self.cancel_button.clicked.connect(self.cancel)
        self.action(self.save, self._save_dialog)
        self.clear_on_change(self.prediction, self.reference, self.tolerance, self.instances)
        for combo in (self.prediction, self.reference):
            combo.currentIndexChanged.connect(self._clear_table)
        self.listen(self.viewer.layers.events.inserted, self._refresh)
        self.listen(self.viewer.layers.events.removed, self._refresh)
        self.listen(self.tasks.changed, self._running)
        self.reference.currentTextChanged.connect(self._show_unit)
        self._refresh()

    def cancelled_note(self) -> str:
        return "the previous table is kept"

    def _running(self, section: str, what: str) -> None:
        if section == self.section:
            self.run.setEnabled(not what)
            self.cancel_button.setEnabled(bool(what))

    def _clear_table(self, *_args: object) -> None:
        """A table for other layers (or removed ones) would be read as this pair's."""
        if self.report is not None and (self.report.prediction, self.report.reference) != (
            self.prediction.currentText(),
            self.reference.currentText(),
        ):
            self.report = None
            self.table.setRowCount(0)
            self.save.setEnabled(False)

    def _refresh(self, *_args: object) -> None:
        fill_labels_combo(self.prediction, self.viewer, _PICK)
        fill_labels_combo(self.reference, self.viewer, _PICK)
        self._clear_table()

    def _show_unit(self, name: str) -> None:
        unit = layer_unit(self.viewer.layers[name]) if name in self.viewer.layers else "mm"
        self.tolerance.setSuffix(" um" if unit == "um" else " mm")

    def _layer(self, combo: QComboBox, role: str) -> napari.layers.Labels:
        name = combo.currentText()
        if name in ("", _PICK) or name not in self.viewer.layers:
            raise InputError(f"choose the {role} Labels layer")
        return self.viewer.layers[name]

    def compare(self) -> None:
        """Score the chosen layers in the background; the table fills when it is done."""
        pred = self._layer(self.prediction, "prediction")
        ref = self._layer(self.reference, "reference")
        self.controller.compare(
            pred, ref, self.tolerance.value(), self.instances.isChecked(), self._show
        )

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
            note = "" if row.present == "both" else row.present
            cells = (
                row.name,
                f"{row.dice:.4f}",
                note,
                f"{row.nsd:.4f}",
                hd,
                f"{row.iou:.4f}",
                f"{row.pred_volume:.3f}",
                f"{row.ref_volume:.3f}",
                row.value,
            )
            for j, cell in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(str(cell)))
        mean = report.mean()
        self.status.setText(
            f"{len(report.rows)} labels, matched by {report.matched_by}; mean Dice "
            f"{mean.get('dice', float('nan')):.4f}, mean NSD@"
            f"{report.tolerance:g}{report.unit} {mean.get('nsd', float('nan')):.4f}; volumes in "
            f"{report.volume_unit}"
        )

    def _save_dialog(self) -> None:
        if self.report is None:
            raise InputError("compare first, then save the report")
        path, _ = QFileDialog.getSaveFileName(
            self, "Save report", "report.csv", "CSV (*.csv);;JSON (*.json)"
        )
        if path:
            self.status.setText(f"saved {self.report.write(path)}")
