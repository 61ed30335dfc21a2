"""Dock widgets: thin views that gather input and call the shared controller."""

from napari_textseg._napari.widgets.compare import CompareWidget
from napari_textseg._napari.widgets.point_prompts import PointPromptsWidget
from napari_textseg._napari.widgets.propagation import PropagationWidget
from napari_textseg._napari.widgets.text import TextLabellingWidget

__all__ = ["CompareWidget", "PointPromptsWidget", "PropagationWidget", "TextLabellingWidget"]
