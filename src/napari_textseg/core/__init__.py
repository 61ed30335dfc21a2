"""GUI-free core: volumes with their geometry, intensity windows and file I/O."""

from napari_textseg.core.errors import NapariTextsegError, ReadError, WriteError
from napari_textseg.core.volume import SourceGeometry, Volume

__all__ = ["NapariTextsegError", "ReadError", "SourceGeometry", "Volume", "WriteError"]
