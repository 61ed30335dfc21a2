"""The bottom layer, GUI-free and model-free: what every other layer builds on.

- volumes with their geometry (``volume``), intensity windows (``intensity``), file I/O (``io``);
- metrics and evaluation reports (``metrics``, ``evaluation``);
- the organ vocabulary and typed text targets (``vocabulary``, ``text_prompts``);
- synthetic phantoms with reference labels (``phantoms``) and the autosave store (``recovery``);
- the exceptions whose message is meant for the user (``errors``).
"""

from napari_textseg.core.errors import NapariTextsegError, ReadError, WriteError
from napari_textseg.core.volume import SourceGeometry, Volume

__all__ = ["NapariTextsegError", "ReadError", "SourceGeometry", "Volume", "WriteError"]
