"""npe2 reader: NIfTI, TIFF and DICOM series folders, with geometry kept for export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from napari_textseg._napari.layers import LayerData, volume_to_layer_data
from napari_textseg.core.io import is_supported, read_volume

__all__ = ["get_reader", "read"]


def _looks_like_dicom_folder(folder: Path) -> bool:
    for file in list(folder.iterdir())[:20]:
        if file.suffix.lower() == ".dcm":
            return True
        if file.is_file():
            try:
                with open(file, "rb") as handle:
                    handle.seek(128)
                    if handle.read(4) == b"DICM":
                        return True
            except OSError:
                continue
    return False


def read(path: str | list[str]) -> list[LayerData]:
    """Read one or several paths into napari layer data (errors carry a plain message)."""
    paths = [path] if isinstance(path, str) else list(path)
    return [volume_to_layer_data(read_volume(p)) for p in paths]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return :func:`read` when napari-textseg can open ``path``, else ``None``."""
    paths = [path] if isinstance(path, str) else list(path)
    for p in map(Path, paths):
        if p.is_dir() and not _looks_like_dicom_folder(p):
            return None
        if not is_supported(p):
            return None
    return read
