"""The volume as a slice model sees it: slicing axis first, the intensity window applied,
cropped to the ROI in tumour ROI mode, and encoded slice by slice into a cache that a
disk store of embeddings backs. The segmentation session builds on it."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import torch

from napari_textseg.core.intensity import Window, no_contrast_reason
from napari_textseg.engine.interactive.embedding_store import EmbeddingStore
from napari_textseg.engine.interactive.features import FeatureCache
from napari_textseg.engine.interactive.prompts import PromptError
from napari_textseg.engine.interactive.roi import Roi
from napari_textseg.engine.interactive.slice_model import SliceModel

__all__ = ["ModelVolume"]

_BACKGROUND_PAUSE_S = 0.1  # how often a waiting precompute looks again, and can be cancelled


class ModelVolume:
    """Coordinates, ROI and slice embeddings of one volume for one slice model.

    Parameters
    ----------
    axis
        The axis slices are taken along (0: axial for the display convention).
    window
        The CT intensity window (a preset name or a Window).
    roi_mm
        Tumour ROI mode for clicks: segment inside a box of this size (mm) around them.
    roi_context
        Tumour ROI mode for a box model: every slice cropped to a square of this many times
        the first box's longer side (at least 64 pixels, :mod:`.roi`) around it.
    cache_bytes
        Memory budget of the slice-embedding cache (default 1 GiB: about 60 slices of
        SAM2 at 1024 px in float32 on a CPU, 120 in bfloat16 on CUDA; least recently used
        slices are dropped).
    cache_dtype
        ``None`` (default) stores slice embeddings as the encoder made them, which keeps
        masks identical to the reference predictors'; ``torch.float16`` halves a CPU
        cache at a cost of about 1.5e-4 in mask logits.
    store
        The disk store of embeddings (``None``: memory only); ``name`` lists the image there.
    """

    def __init__(
        self,
        data: np.ndarray,
        spacing: tuple[float, float, float],
        modality: str,
        slice_model: SliceModel,
        *,
        axis: int = 0,
        window: str | Window = "soft_tissue",
        roi_mm: float | None = None,
        roi_context: float | None = None,
        cache_bytes: int = 1024**3,
        cache_dtype: torch.dtype | None = None,
        store: EmbeddingStore | None = None,
        name: str = "",
    ):
        if np.asarray(data).ndim != 3:
            raise PromptError(f"point segmentation needs a 3-D volume, got shape {np.shape(data)}")
        if axis not in (0, 1, 2):
            raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
        blank = no_contrast_reason(data)
        if blank:
            raise PromptError(f"nothing to segment: {blank} (a blank or damaged image?)")
        self.shape = tuple(int(s) for s in np.shape(data))
        self.axis = axis
        self._order = [axis] + [a for a in range(3) if a != axis]  # volume axes in working order
        self.spacing = tuple(float(s) for s in spacing)
        self.slice_model = slice_model
        self.roi_mm = roi_mm
        self.roi_context = roi_context
        self._data, self._modality, self._window = data, modality, window
        self.name = name  # the image's name, for the disk store's listing
        self._normalised: np.ndarray | None = None
        self._roi_work: np.ndarray | None = None
        self.roi: Roi | None = None
        self.cache = FeatureCache(self._encode, cache_bytes, cache_dtype)
        self.store = store
        self._store_folder: Path | None = None
        self._store_lock = threading.Lock()

    @property
    def _model_input(self) -> np.ndarray:
        """The windowed volume, slicing axis first; computed on first use (in a worker)."""
        if self._normalised is None:
            # A model may read volumes prepared its own way (LiteMedSAM: the challenge's uint8).
            prepared = self.slice_model.prepare_volume(self._data, self._modality, self._window)
            self._normalised = np.moveaxis(prepared, self.axis, 0)
        return self._normalised

    @property
    def frames(self) -> np.ndarray:
        """The model-ready volume (0-255, the window applied), slicing axis first."""
        return self._model_input

    @property
    def _work(self) -> np.ndarray:
        """What the model sees: the ROI crop in ROI mode, else the whole volume."""
        return self._roi_work if self._roi_work is not None else self._model_input

    def _to_work(self, points_zyx: np.ndarray) -> np.ndarray:
        """Volume (z, y, x) -> working frame: slicing axis first, then the ROI origin."""
        points = np.asarray(points_zyx, dtype=float).reshape(-1, 3)[:, self._order]
        return self.roi.to_roi(points) if self.roi is not None else points

    def _from_work(self, mask: np.ndarray) -> np.ndarray:
        """A working-frame mask -> a (z, y, x) volume mask."""
        full = self.roi.paste(mask) if self.roi is not None else mask
        return np.moveaxis(full, 0, self.axis)

    def _key(self, z: int) -> tuple:
        """Cache key of working-frame slice ``z``: the ROI it belongs to, and the slice."""
        return (self.roi.start, self.roi.shape, z) if self.roi is not None else (None, None, z)

    def _stored(self) -> Path | None:
        """This image's folder in the disk store (found once: it hashes the frames)."""
        if self.store is None:
            return None
        with self._store_lock:
            if self._store_folder is None:
                frames = self._model_input
                key = self.store.image_key(frames, self.axis, self.slice_model.cache_tag)
                meta = {
                    "shape": list(self.shape),
                    "axis": self.axis,
                    "model": self.slice_model.cache_tag,
                    "modality": self._modality,
                    "window": str(self._window),
                    "name": self.name,
                }
                self._store_folder = self.store.open(key, meta)
            return self._store_folder

    def _encode(self, key: tuple):
        start, shape, z = key
        if start is None:
            folder = self._stored()
            features = self.store.load(folder, z) if folder is not None else None  # type: ignore[union-attr]
            if features is None:
                features = self.slice_model.encode(self._model_input[z])
                if folder is not None:
                    self.store.save(folder, z, features)  # type: ignore[union-attr]
            return features
        # Crop the one plane from the key itself: a prefetch may outlive the ROI it was for.
        plane = Roi(tuple(start[1:]), tuple(shape[1:]), self._model_input.shape[1:])  # type: ignore[arg-type]
        index = start[0] + z
        if 0 <= index < self._model_input.shape[0]:
            frame = plane.crop(self._model_input[index], fill=0.0)
        else:
            frame = np.zeros(shape[1:], dtype=self._model_input.dtype)
        return self.slice_model.encode(frame)

    def _features(self, z: int):
        return self.cache.get(self._key(z))

    @property
    def n_slices(self) -> int:
        """Slices along the working axis (inside the ROI in ROI mode)."""
        return int(self.roi.shape[0]) if self.roi is not None else int(self.shape[self.axis])

    encodes_slices = True  # slices can be encoded ahead of the prompts (the background precompute)

    @property
    def uses_roi(self) -> bool:
        """Whether the model sees a crop around the prompts (tumour ROI mode)."""
        return self.roi_mm is not None or self.roi_context is not None

    def _slice_offset(self) -> int:
        return self.roi.start[0] if self.roi is not None else 0

    def precompute_steps(self, start: int = 0) -> Generator[tuple[int, int], None, tuple[int, int]]:
        """Encode every slice not yet cached, from volume slice ``start`` outwards, each when
        no prompt is waiting for the encoder; yields ``(done, total)``, returns how many
        slices were encoded and how many read from the disk store. Closing the generator
        (Cancel) stops between two slices."""
        if self.uses_roi:  # ROI mode encodes crops around the prompt, not whole slices
            return 0, 0
        n = self.n_slices
        start = min(max(int(start), 0), n - 1)
        order = [start] + [z for d in range(1, n) for z in (start + d, start - d) if 0 <= z < n]
        todo = [(None, None, z) for z in order if (None, None, z) not in self.cache]  # whole slices
        hits = self.store.hits if self.store is not None else 0
        # slices this loop brought in (a prompt or a propagation may have done others meanwhile)
        fetched = 0
        for done, key in enumerate(todo, 1):
            if key not in self.cache:
                while not self.cache.try_background(
                    key
                ):  # a prompt or a propagation runs: it goes first
                    time.sleep(_BACKGROUND_PAUSE_S)
                    yield done - 1, len(todo)  # (a Cancel meanwhile stops here, between two tries)
                fetched += 1
            yield done, len(todo)
        read = (self.store.hits - hits) if self.store is not None else 0
        return max(fetched - read, 0), read

    def close(self) -> None:
        """Stop background prefetching and free the cache."""
        self.cache.close()
        self.cache.clear()
