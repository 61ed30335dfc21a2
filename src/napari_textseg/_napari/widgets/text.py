"""The text-labelling dock widget: an announcement until the text engine lands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

if TYPE_CHECKING:
    import napari

__all__ = ["TextLabellingWidget"]


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


class TextLabellingWidget(_PlannedWidget):
    """Name organs, get a label map."""

    title = "Text labelling"
    plan = (
        "Type organ names ('liver, spleen, left kidney') to get one named, non-overlapping "
        "label map: CLIP prompt ensembles find each organ, SAM/SAM2 segment and propagate "
        "it. Re-running one organ replaces only that organ."
    )
