"""One way to open a segmentation session for a loaded model: the encoder's runtime and
precision, and the disk store of slice embeddings, chosen in one place for the command
line, the text backends and the panel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_textseg.engine.interactive.embedding_store import EmbeddingStore
from napari_textseg.engine.interactive.session import SegmentationSession
from napari_textseg.engine.interactive.slice_models import SliceModel, make_slice_model
from napari_textseg.models.loader import LoadedModel

__all__ = ["EmbeddingOptions", "open_session", "open_slice_model"]

# With a disk store behind it, memory holds only the slices in use: a slice read back from
# disk costs milliseconds (LiteMedSAM: 4 MB), and a 300-slice CT stays within volume + 2 GiB.
STORE_MEMORY_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class EmbeddingOptions:
    """Where slice embeddings come from: the encoder's ``runtime`` and ``precision``
    (:mod:`napari_textseg.models.encoder_runtime`), and a disk ``store`` (``None``: memory only)."""

    runtime: str = "auto"
    precision: str = "f32"
    store: EmbeddingStore | None = None


def open_slice_model(loaded: LoadedModel, options: EmbeddingOptions | None = None) -> SliceModel:
    """The slice model of a loaded SAM, SAM2 or LiteMedSAM, its encoder where ``options`` say."""
    options = options or EmbeddingOptions()
    return make_slice_model(loaded.model, loaded.card.family, loaded.device, loaded.card.arch,
                            runtime=options.runtime, precision=options.precision)


def open_session(
    data: np.ndarray,
    spacing: tuple[float, float, float],
    modality: str,
    slice_model: SliceModel,
    options: EmbeddingOptions | None = None,
    name: str = "",
    **kwargs: Any,
) -> SegmentationSession:
    """A session on ``data`` reading and writing ``options.store``; ``kwargs`` go to
    :class:`~.session.SegmentationSession` (``roi_mm``, ``confine``, ``axis``, ...)."""
    store = options.store if options is not None else None
    if store is not None:
        kwargs.setdefault("cache_bytes", STORE_MEMORY_BYTES)
    session = SegmentationSession(data, spacing, modality, slice_model, store=store, **kwargs)
    session.name = name
    return session
