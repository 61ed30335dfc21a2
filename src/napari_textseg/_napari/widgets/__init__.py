"""Panel sections (thin views on the controllers) and the TextSeg panel that holds them all."""

from napari_textseg._napari.widgets.compare import CompareWidget
from napari_textseg._napari.widgets.point_prompts import PointPromptsWidget
from napari_textseg._napari.widgets.propagation import PropagationWidget
from napari_textseg._napari.widgets.text import TextLabellingWidget
from napari_textseg._napari.widgets.textseg import TextSegWidget

__all__ = [
    "CompareWidget",
    "PointPromptsWidget",
    "PropagationWidget",
    "TextLabellingWidget",
    "TextSegWidget",
]
