"""npe2 reader: NIfTI, TIFF and DICOM series folders, with geometry kept for export."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

from napari_textseg._napari.layers import LayerData, volume_to_layer_data
from napari_textseg.core.io import is_supported, read_volume

__all__ = ["get_reader", "read"]


# Files looked at before a folder is declared not DICOM (series often sit in subfolders).
_DICOM_PROBE_FILES = 64


def _is_dicom_file(file: Path) -> bool:
    if file.suffix.lower() == ".dcm":
        return True
    try:
        with open(file, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _looks_like_dicom_folder(folder: Path) -> bool:
    files = (p for p in folder.rglob("*") if p.is_file())
    return any(_is_dicom_file(file) for file in itertools.islice(files, _DICOM_PROBE_FILES))


def read(path: str | list[str]) -> list[LayerData]:
    """Read one or several paths into napari layer data (errors carry a plain message);
    an oblique volume, which napari shows axis-aligned, gets a warning with its angle."""
    from napari.utils.notifications import show_warning

    paths = [path] if isinstance(path, str) else list(path)
    layers = []
    for p in paths:
        volume = read_volume(p)
        oblique = volume.geometry.obliquity()
        if oblique is not None:
            show_warning(f"{Path(p).name}: {oblique.describe()}")
        layers.append(volume_to_layer_data(volume))
    return layers


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return :func:`read` when napari-textseg can open ``path``, else ``None``."""
    paths = [path] if isinstance(path, str) else list(path)
    for p in map(Path, paths):
        if p.is_dir() and not _looks_like_dicom_folder(p):
            return None
        if not is_supported(p):
            return None
    return read
