"""napari-textseg: SAM / SAM2 / SAM3 and CLIP segmentation of 3D medical and microscopy volumes.

The package is layered (data flows down, never up)::

    _napari   readers, writers, sample data and dock widgets (the only code that imports napari or
    Qt)
    models    model cards, download store and loaders for SAM, SAM2, CLIP and SAM3
    core      Volume, intensity windows and file I/O

Importing the package imports neither napari nor torch.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-textseg")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
