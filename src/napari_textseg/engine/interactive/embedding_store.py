"""Slice embeddings kept on disk, so that an image is encoded once, not once per session.

Layout: one folder per image and model, one ``.npz`` file per slice::

    <cache>/<key>/meta.json     what the folder holds (image name, shape, model, runtime)
    <cache>/<key>/z00042.npz    the features of slice 42, as the encoder made them

The key is a hash of the model-ready frames (so the CT window and any other
preprocessing are in it), the slicing axis, and the slice model's tag (its weights'
hash, runtime, precision and device). Files are written atomically; a file that does
not read back whole (truncated, damaged) is deleted and the slice encoded again. The
folders used least recently are evicted beyond a size cap. A cache folder that cannot
be written (read-only, full disk) turns the store off for the session with one warning:
the work goes on, and nothing half-written is left.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import torch

from napari_textseg.core.errors import InputWarning
from napari_textseg.core.io.atomic import atomic_target
from napari_textseg.engine.interactive.features import Features

__all__ = [
    "CACHE_DIR_ENV",
    "CACHE_SIZE_ENV",
    "CachedImage",
    "EmbeddingStore",
    "default_store",
    "embedding_cache_dir",
]

CACHE_DIR_ENV = "NAPARI_TEXTSEG_EMBEDDING_CACHE"
CACHE_SIZE_ENV = "NAPARI_TEXTSEG_EMBEDDING_CACHE_GB"
DEFAULT_CAP_GB = 10.0
_META = "meta.json"


def embedding_cache_dir() -> Path:
    """The default folder (``$NAPARI_TEXTSEG_EMBEDDING_CACHE``, else the user cache)."""
    root = os.environ.get(CACHE_DIR_ENV)
    return (
        Path(root) if root else Path(platformdirs.user_cache_dir("napari-textseg")) / "embeddings"
    )


def _cap_bytes() -> int:
    text = os.environ.get(CACHE_SIZE_ENV, "")
    try:
        gigabytes = float(text) if text else DEFAULT_CAP_GB
    except ValueError:
        gigabytes = DEFAULT_CAP_GB
    return int(max(gigabytes, 0.001) * 1024**3)


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def _to_arrays(features: Features) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for name, value in features.items():
        for i, tensor in enumerate(value if isinstance(value, list) else [value]):
            key = f"{name}.{i}" if isinstance(value, list) else name
            t = tensor.detach().to("cpu")
            if t.dtype == torch.bfloat16:  # numpy has no bfloat16: float32 holds it exactly
                key += "@bf16"
                t = t.float()
            arrays[key] = t.numpy()
    return arrays


def _from_arrays(arrays: dict[str, np.ndarray]) -> Features:
    features: Features = {}
    lists: dict[str, dict[int, torch.Tensor]] = {}
    for key, array in arrays.items():
        name, _, dtype = key.partition("@")
        tensor = torch.from_numpy(np.array(array))
        if dtype == "bf16":
            tensor = tensor.to(torch.bfloat16)
        base, dot, index = name.rpartition(".")
        if dot and index.isdigit():
            lists.setdefault(base, {})[int(index)] = tensor
        else:
            features[name] = tensor
    for name, items in lists.items():
        features[name] = [items[i] for i in sorted(items)]
    return features


@dataclass(frozen=True)
class CachedImage:
    """One folder of the store: its key, what it holds, its size and when it was last used."""

    key: str
    meta: dict
    slices: int
    nbytes: int
    last_used: float


class EmbeddingStore:
    """Slice features on disk under ``root``, capped at ``cap_bytes`` (least recently used go)."""

    def __init__(self, root: str | os.PathLike, cap_bytes: int | None = None):
        self.root = Path(root)
        self.cap_bytes = int(cap_bytes) if cap_bytes else _cap_bytes()
        self.disabled: str | None = None  # why the store was turned off, once it was
        self._lock = threading.Lock()
        self.hits = 0
        self.writes = 0

    # -- keys ------------------------------------------------------------------------

    @staticmethod
    def image_key(frames: np.ndarray, axis: int, model_tag: str) -> str:
        """The folder name for model-ready ``frames`` (slicing axis first) and a model."""
        digest = hashlib.blake2b(digest_size=20)
        digest.update(f"{frames.shape}|{frames.dtype}|axis{axis}|{model_tag}|".encode())
        digest.update(memoryview(np.ascontiguousarray(frames)).cast("B"))
        return digest.hexdigest()

    @staticmethod
    def _slice_file(folder: Path, z: int) -> Path:
        return folder / f"z{int(z):05d}.npz"

    # -- use -------------------------------------------------------------------------

    def open(self, key: str, meta: dict) -> Path | None:
        """The folder of ``key``, created with ``meta`` if new and marked as used now;
        ``None`` once the store is off."""
        if self.disabled:
            return None
        folder = self.root / key
        try:
            folder.mkdir(parents=True, exist_ok=True)
            meta_file = folder / _META
            if not meta_file.is_file():
                with atomic_target(meta_file) as tmp:
                    tmp.write_text(json.dumps(meta, indent=1))
            os.utime(folder)  # last used: what eviction orders by
        except OSError as err:
            self._turn_off(err)
            return None
        return folder

    def load(self, folder: Path, z: int) -> Features | None:
        """The features of slice ``z``, or ``None`` (not there, or unreadable: then deleted)."""
        path = self._slice_file(folder, z)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)  # truncated or damaged: never used, encoded again
            return None
        if not arrays:
            path.unlink(missing_ok=True)
            return None
        self.hits += 1
        return _from_arrays(arrays)

    def save(self, folder: Path, z: int, features: Features) -> None:
        """Keep slice ``z``'s features (atomically); evict old folders beyond the cap."""
        if self.disabled:
            return
        arrays = _to_arrays(features)
        try:
            with atomic_target(self._slice_file(folder, z)) as tmp:
                np.savez(tmp, **arrays)
        except OSError as err:
            self._turn_off(err)
            return
        self.writes += 1
        if self.writes % 16 == 1:  # a walk of the cache folder now and then, not per slice
            self.evict(keep=folder.name)

    def _turn_off(self, err: OSError) -> None:
        with self._lock:
            if self.disabled:
                return
            self.disabled = f"{err.strerror or err}"
        warnings.warn(
            f"the embedding cache {self.root} cannot be written ({self.disabled}); going on "
            "without "
            "it (slices are encoded in memory only)",
            InputWarning,
            stacklevel=2,
        )

    # -- housekeeping ----------------------------------------------------------------

    def images(self) -> list[CachedImage]:
        """Every folder of the store, most recently used first."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            try:
                meta = json.loads((folder / _META).read_text())
            except (OSError, ValueError):
                meta = {}
            slices = sum(1 for f in folder.glob("z*.npz"))
            found.append(
                CachedImage(
                    folder.name, meta, slices, _folder_bytes(folder), folder.stat().st_mtime
                )
            )
        return sorted(found, key=lambda c: c.last_used, reverse=True)

    def nbytes(self) -> int:
        """Bytes on disk."""
        return sum(image.nbytes for image in self.images())

    def evict(self, keep: str | None = None) -> list[str]:
        """Delete the least recently used folders until the store fits its cap."""
        images = self.images()
        total = sum(i.nbytes for i in images)
        dropped = []
        for image in reversed(images):
            if total <= self.cap_bytes:
                break
            if image.key == keep:
                continue
            shutil.rmtree(self.root / image.key, ignore_errors=True)
            total -= image.nbytes
            dropped.append(image.key)
        return dropped

    def clear(self) -> int:
        """Delete everything; returns the bytes freed."""
        freed = self.nbytes()
        if self.root.is_dir():
            for child in self.root.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(
                    missing_ok=True
                )
        return freed


def default_store(
    cache_dir: str | os.PathLike | None = None, enabled: bool = True
) -> EmbeddingStore | None:
    """The store the command line and the panel use (``None`` with ``enabled=False``)."""
    if not enabled:
        return None
    return EmbeddingStore(cache_dir or embedding_cache_dir())
