"""Dock widgets. They are announcements for now: each says what it will do once the
segmentation engine lands, so that the plugin's layout can be tried today."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

if TYPE_CHECKING:
    import napari

__all__ = ["PointPromptsWidget", "PropagationWidget", "TextLabellingWidget"]


class _PlannedWidget(QWidget):
    title = ""
    plan = ""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.setMaximumWidth(360)
        layout = QVBoxLayout(self)
        heading = QLabel(f"<b>{self.title}</b>")
        body = QLabel(self.plan)
        body.setWordWrap(True)
        body.setObjectName("plan")
        notice = QLabel("<i>Not available yet: this panel describes what it will do.</i>")
        notice.setWordWrap(True)
        for widget in (heading, body, notice):
            layout.addWidget(widget)
        layout.addStretch(1)


class PointPromptsWidget(_PlannedWidget):
    """Click-to-segment on the current slice."""

    title = "Point prompts"
    plan = (
        "Click positive (green) and negative (red) points on a slice, T toggles the sign; "
        "S segments the slice with SAM or SAM2, C commits the object to a Labels layer "
        "(one Undo reverts it). Further clicks correct the mask."
    )


class PropagationWidget(_PlannedWidget):
    """Propagate a prompted object through the volume."""

    title = "Propagation"
    plan = (
        "Shift+S propagates the prompted object forwards and backwards through the volume "
        "with the SAM2 memory bank: choose its size and policy (FIFO or ranked), the "
        "stop rule and slice range, and a tumour ROI crop in mm. Runs in the background "
        "with progress and Cancel."
    )


class TextLabellingWidget(_PlannedWidget):
    """Name organs, get a label map."""

    title = "Text labelling"
    plan = (
        "Type organ names ('liver, spleen, left kidney') to get one named, non-overlapping "
        "label map: CLIP prompt ensembles find each organ, SAM/SAM2 segment and propagate "
        "it. Re-running one organ replaces only that organ."
    )
