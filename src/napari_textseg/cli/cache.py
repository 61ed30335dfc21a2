"""``napari-textseg cache list|clear``: the slice-embedding cache on disk."""

from __future__ import annotations

import argparse
import time

from napari_textseg.cli._common import count

__all__ = ["cache"]


def _size(nbytes: int) -> str:
    return f"{nbytes / 1024**2:.1f} MB" if nbytes < 1024**3 else f"{nbytes / 1024**3:.2f} GB"


def cache(args: argparse.Namespace) -> int:
    from napari_textseg.engine.interactive.embedding_store import (
        EmbeddingStore,
        embedding_cache_dir,
    )

    store = EmbeddingStore(args.cache_dir or embedding_cache_dir())
    if args.cache_command == "clear":
        freed = store.clear()
        print(f"cleared {store.root}: {_size(freed)} freed")
        return 0
    images = store.images()
    print(
        f"{store.root}: {count(len(images), 'image')}, {_size(sum(i.nbytes for i in images))} "
        f"(cap {_size(store.cap_bytes)})"
    )
    for image in images:
        meta = image.meta
        shape = "x".join(str(s) for s in meta.get("shape", [])) or "?"
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(image.last_used))
        print(
            f"  {image.key[:12]}  {meta.get('name') or '(unnamed)'}  {shape}  "
            f"{meta.get('model', '?')}  "
            f"{count(image.slices, 'slice')}  {_size(image.nbytes)}  last used {used}"
        )
    return 0
