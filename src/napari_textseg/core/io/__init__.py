"""File I/O for volumes and label maps: NIfTI, TIFF and DICOM series in, NIfTI and TIFF out."""

from napari_textseg.core.io.export import write_labels
from napari_textseg.core.io.read import SUPPORTED_SUFFIXES, is_supported, read_volume

__all__ = ["SUPPORTED_SUFFIXES", "is_supported", "read_volume", "write_labels"]
