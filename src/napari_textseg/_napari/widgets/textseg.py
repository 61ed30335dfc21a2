"""The TextSeg panel: one model for everything, and a tab per task.

Laid out like micro-sam's annotator and napari-nninteractive: the model on top, loaded
once, then one tab each for prompts (points and boxes), propagation, text and compare.
Each tab is a :class:`~napari_textseg._napari.widgets._section.Section` with its own
status line and Cancel; each is also a dock of its own in the Plugins menu.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QFrame, QTabWidget, QVBoxLayout, QWidget

from napari_textseg._napari.prompts_controller import controller_for
from napari_textseg._napari.widgets._section import PANEL_WIDTH
from napari_textseg._napari.widgets.compare import CompareWidget
from napari_textseg._napari.widgets.model_section import ModelSection
from napari_textseg._napari.widgets.point_prompts import PromptsSection
from napari_textseg._napari.widgets.propagation import PropagationWidget
from napari_textseg._napari.widgets.text import TextLabellingWidget

if TYPE_CHECKING:
    import napari

__all__ = ["TextSegWidget"]

# Tab titles short enough to read in full at 380 px (napari elided "Point pr..." and "Propa...").
TABS = (
    ("Prompts", PromptsSection),
    ("Propagate", PropagationWidget),
    ("Text", TextLabellingWidget),
    ("Compare", CompareWidget),
)


class TextSegWidget(QWidget):
    """Model on top; prompts, propagation, text and compare as tabs."""

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.setMaximumWidth(PANEL_WIDTH)
        self.controller = controller_for(napari_viewer)
        self.model_section = ModelSection(napari_viewer)
        self.model, self.load = (
            self.model_section.model,
            self.model_section.load,
        )  # what scripts reach for
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.setUsesScrollButtons(False)
        self.sections = {}
        for title, section_class in TABS:
            section = section_class(napari_viewer)  # each scrolls on its own, below the model
            self.sections[section.section] = section
            self.tabs.addTab(section, title)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.model_section)
        layout.addWidget(line)
        layout.addWidget(self.tabs, 1)

    @property
    def prompts(self) -> PromptsSection:
        return self.sections["prompts"]

    @property
    def propagation(self) -> PropagationWidget:
        return self.sections["propagation"]

    @property
    def text(self) -> TextLabellingWidget:
        return self.sections["text"]

    @property
    def compare(self) -> CompareWidget:
        return self.sections["compare"]

    def show_section(self, section: str) -> None:
        """Bring the tab of ``section`` to the front."""
        self.tabs.setCurrentWidget(self.sections[section])
