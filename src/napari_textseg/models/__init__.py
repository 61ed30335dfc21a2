"""Model cards, the download store and loaders for SAM, SAM2, CLIP and SAM3 (GUI-free)."""

from napari_textseg.models.errors import (
    CheckpointError,
    LicenseNotAcceptedError,
    ModelNotFoundError,
    OfflineError,
    UnsupportedReleaseError,
)
from napari_textseg.models.registry import CARDS, ModelCard, get_card

__all__ = [
    "CARDS",
    "UnsupportedReleaseError",
    "CheckpointError",
    "LicenseNotAcceptedError",
    "ModelCard",
    "ModelNotFoundError",
    "OfflineError",
    "get_card",
]
