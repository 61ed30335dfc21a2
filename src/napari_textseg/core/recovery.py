"""Autosaved label maps, so that a crash loses at most the last action.

After every commit the plugin writes the Labels layer here, keyed by the image it was
drawn on; reopening that image offers to restore it. Each save replaces the previous
one for the same (image, layer) atomically, so the folder holds at most one copy per
layer, and :meth:`RecoveryStore.prune` keeps only the newest images within a byte
budget.

The folder is ``$NAPARI_TEXTSEG_RECOVERY_DIR`` or the user cache folder's ``recovery``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_textseg.core.io.atomic import atomic_group, atomic_target

__all__ = ["RecoveryEntry", "RecoveryStore", "image_key"]


def image_key(source: str | None, data: np.ndarray) -> str:
    """A key for "the same image": its file path, shape, dtype and a sample of its voxels."""
    data = np.asarray(data)
    digest = hashlib.sha1()
    digest.update(str(Path(source).resolve() if source else "").encode())
    digest.update(f"{data.shape}{data.dtype}".encode())
    # A strided sample tells two different scans of the same size apart without reading everything
    # twice.
    step = max(1, data.size // 65536)
    digest.update(np.ascontiguousarray(data.reshape(-1)[::step]).tobytes())
    return digest.hexdigest()[:20]


@dataclass(frozen=True)
class RecoveryEntry:
    """One autosaved Labels layer."""

    layer: str
    path: Path
    saved_at: float
    names: dict[int, str]

    def load(self) -> np.ndarray:
        """The saved label map."""
        with np.load(self.path) as saved:
            return saved["labels"]


def _default_root() -> Path:
    env = os.environ.get("NAPARI_TEXTSEG_RECOVERY_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-textseg")) / "recovery"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "labels"


class RecoveryStore:
    """Autosaved label maps per image, bounded to ``max_images`` images and ``max_bytes``."""

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        max_images: int = 20,
        max_bytes: int = 2 * 1024**3,
    ):
        self.root = Path(root) if root is not None else _default_root()
        self.max_images = max_images
        self.max_bytes = max_bytes

    def save(
        self,
        key: str,
        layer: str,
        labels: np.ndarray,
        names: dict[int, str] | None = None,
        image: str = "",
    ) -> Path:
        """Write ``labels`` for (image ``key``, ``layer``), replacing the previous save; then
        prune."""
        folder = self.root / key
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{_safe(layer)}.npz"
        meta = {
            "layer": layer,
            "image": image,
            "saved_at": time.time(),
            "names": {str(k): v for k, v in (names or {}).items()},
        }
        with atomic_group():  # labels and their names replace the previous save together
            with atomic_target(target) as tmp:
                np.savez_compressed(tmp, labels=np.asarray(labels))
            with atomic_target(target.with_suffix(".json")) as tmp:
                tmp.write_text(json.dumps(meta))
        self.prune(keep=key)
        return target

    def entries(self, key: str) -> list[RecoveryEntry]:
        """The layers saved for image ``key``, newest first."""
        folder = self.root / key
        found = []
        for meta_path in folder.glob("*.json") if folder.is_dir() else []:
            data_path = meta_path.with_suffix(".npz")
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, json.JSONDecodeError):
                continue  # a damaged note is skipped, not fatal
            if data_path.is_file():
                names = {int(k): v for k, v in meta.get("names", {}).items()}
                found.append(
                    RecoveryEntry(
                        meta.get("layer", data_path.stem), data_path, meta.get("saved_at", 0), names
                    )
                )
        return sorted(found, key=lambda e: e.saved_at, reverse=True)

    def discard(self, key: str) -> None:
        """Forget everything saved for image ``key``."""
        shutil.rmtree(self.root / key, ignore_errors=True)

    def _folders(self) -> list[tuple[float, int, Path]]:
        out = []
        for folder in self.root.iterdir() if self.root.is_dir() else []:
            files = [f for f in folder.iterdir() if f.is_file()] if folder.is_dir() else []
            if files:
                out.append(
                    (
                        max(f.stat().st_mtime for f in files),
                        sum(f.stat().st_size for f in files),
                        folder,
                    )
                )
        return sorted(out, reverse=True)

    def nbytes(self) -> int:
        """Bytes the store holds on disk."""
        return sum(size for _, size, _ in self._folders())

    def prune(self, keep: str | None = None) -> None:
        """Drop the oldest images beyond ``max_images`` or ``max_bytes`` (never ``keep``)."""
        total = 0
        for rank, (_, size, folder) in enumerate(self._folders()):
            total += size
            if folder.name != keep and (rank >= self.max_images or total > self.max_bytes):
                shutil.rmtree(folder, ignore_errors=True)
                total -= size
